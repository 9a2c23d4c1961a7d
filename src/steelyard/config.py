"""Settings: one typed object, read from the environment (``STEELYARD_`` prefix).

Nothing is read or written at import time; ``load_settings()`` does the I/O (creating the data
directory and, on first start, a secret key stored under it).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEELYARD_", extra="ignore")

    data_dir: Path = Path(".steelyard")
    #: Empty means an SQLite file ``steelyard.db`` under ``data_dir``.
    database_url: str = ""
    secret_key: str = ""
    #: Base URL the server is reached at, used for file ``attachment_url``s. Empty: derived from
    #: each request's own URL.
    public_url: str = ""
    callback_retry_base_seconds: float = 60.0
    callback_max_attempts: int = 20
    callback_timeout_seconds: float = 10.0
    allow_private_callbacks: bool = False
    lease_seconds: int = 600
    min_hourly_wage: float = 15.0
    wage_currency: str = "USD"
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 100 * 1024 * 1024
    job_poll_seconds: float = 0.5
    #: How long a claimed job is ours; a runner that dies mid-job loses it after this and
    #: another runner retries it. Must exceed the longest handler (callbacks: the timeout).
    job_lease_seconds: float = 300.0
    #: Jobs one runner executes at once (callbacks spend their time waiting on receivers).
    job_concurrency: int = 4
    #: Retry delays double from ``callback_retry_base_seconds`` up to this cap; 90 minutes makes
    #: the 20th attempt land about 24 hours after the first, as Scale documents.
    callback_retry_max_delay_seconds: float = 5400.0
    #: ``smtp://[user:password@]host:port`` (``smtps://`` for TLS, ``smtp+starttls://``);
    #: empty disables email callbacks.
    smtp_url: str = ""
    smtp_from: str = "steelyard@localhost"
    #: Lifetime of signed file links (``attachment_url``); links are rounded up to the hour so
    #: browsers can cache them.
    file_url_ttl_seconds: int = 7 * 24 * 3600
    file_import_timeout_seconds: float = 30.0
    sql_echo: bool = False
    extra_engine_options: dict[str, object] = Field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'steelyard.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus ``overrides``; prepares the data dir and secret."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        key_file = settings.data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        settings.secret_key = key_file.read_text().strip()
    return settings
