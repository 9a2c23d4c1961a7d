"""Settings: one typed object, read from the environment (``STEELYARD_`` prefix).

Nothing is read or written at import time; ``load_settings()`` does the I/O (creating the data
directory and, on first start, a secret key stored under it).
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from pydantic import Field, field_validator
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
    #: Shortest password accepted when one is set (NIST SP 800-63B: 15 for a password that is
    #: the only factor; never below 8). See ``accounts.passwords``.
    password_min_length: int = Field(15, ge=8, le=1024)
    #: Consecutive failed sign-ins for one email before each attempt must wait (1 minute,
    #: doubling up to an hour; see ``accounts.signin``).
    login_failures_before_throttle: int = Field(10, ge=1)
    sql_echo: bool = False
    extra_engine_options: dict[str, object] = Field(default_factory=dict)

    # Rate limits (requests per minute; 0 disables one). Shared by every serving process through
    # the database; see steelyard.ratelimit for how closely they hold across processes.
    rate_limit_per_key: int = Field(300_000, ge=0)
    rate_limit_per_address: int = Field(600_000, ge=0)
    #: Requests to routes that check a password (sign-in...) per client address: the
    #: password-guessing case, counted exactly.
    login_rate_limit_per_address: int = Field(20, ge=0)
    #: How often each process adds its counts to the shared table and reads the totals back.
    rate_limit_sync_seconds: float = Field(0.5, gt=0)
    #: Reverse proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed: addresses
    #: or networks, comma-separated (``127.0.0.1,10.0.0.0/8``; ``*`` trusts anyone). Empty: the
    #: client address is the TCP peer's and forwarding headers are ignored.
    trusted_proxies: str = ""

    # Slow clients (see docs/deploy.md). The request line and headers must arrive within
    # ``request_head_timeout_seconds`` of the first byte (or of connecting); a body may pause at
    # most ``request_body_timeout_seconds`` between two reads.
    request_head_timeout_seconds: float = Field(10.0, gt=0)
    request_body_timeout_seconds: float = Field(30.0, gt=0)
    max_request_head_bytes: int = Field(64 * 1024, ge=1024)
    keep_alive_timeout_seconds: int = Field(5, ge=1)
    graceful_shutdown_seconds: int = Field(30, ge=0)
    #: Connections plus requests one process serves at once before answering 503; 0: no limit.
    max_concurrency: int = Field(0, ge=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network"
                ) from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

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
