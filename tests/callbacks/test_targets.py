"""``targets.prepare``: what an edge does with a callback target before its write transaction."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from steelyard.callbacks import targets, urls
from steelyard.config import Settings
from steelyard.errors import ValidationError
from tests.callbacks.fakedns import FakeDns


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="k")


def prepare(target: object, settings: Settings, field: str = "callback_url") -> None:
    asyncio.run(targets.prepare(target, field=field, settings=settings))


def test_an_email_target_needs_smtp(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="STEELYARD_SMTP_URL") as err:
        prepare("ops@example.com", settings, field="callback")
    assert err.value.field == "callback"
    prepare("ops@example.com", settings.model_copy(update={"smtp_url": "smtp://mail:25"}))


def test_a_name_resolving_to_a_private_address_is_refused_before_any_transaction(
    dns: FakeDns, settings: Settings
) -> None:
    dns.answers["hooks.example.com"] = "100.100.100.200"
    with pytest.raises(ValidationError) as err:
        prepare("https://hooks.example.com/cb", settings)
    assert err.value.field == "callback_url"
    # The answer is cached for the service's own check, which never resolves.
    with pytest.raises(ValidationError):
        urls.check_callback_target(
            "https://hooks.example.com/cb", field="callback_url", policy=urls.PUBLIC_ONLY
        )
    assert dns.calls == ["hooks.example.com"]


def test_a_public_name_is_looked_up_once(dns: FakeDns, settings: Settings) -> None:
    dns.answers["hooks.example.com"] = "93.184.216.34"
    for _ in range(3):
        prepare("https://hooks.example.com/cb", settings)
    assert dns.calls == ["hooks.example.com"]


@pytest.mark.parametrize(
    "target", [None, "", 42, "https://93.184.216.34/cb", "ops@example.com", "not a url"]
)
def test_no_lookup_for_what_is_not_a_host_name(
    dns: FakeDns, settings: Settings, target: object
) -> None:
    with_smtp = settings.model_copy(update={"smtp_url": "smtp://mail:25"})
    if target == "not a url":
        with pytest.raises(ValidationError):
            prepare(target, with_smtp)
    else:
        prepare(target, with_smtp)
    assert dns.calls == []


def test_a_name_that_does_not_answer_costs_the_request_a_bounded_wait_and_is_accepted(
    dns: FakeDns, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(targets, "LOOKUP_WAIT_SECONDS", 0.3)
    dns.stalls["stalls.example.com"] = 1.5
    dns.answers["stalls.example.com"] = "10.0.0.1"

    async def two_requests() -> None:
        await asyncio.gather(
            targets.prepare("https://stalls.example.com/a", field="callback", settings=settings),
            targets.prepare("https://stalls.example.com/b", field="callback", settings=settings),
        )

    started = time.monotonic()
    asyncio.run(two_requests())
    waited = time.monotonic() - started
    assert 0.25 < waited < 1.2, waited
    assert dns.calls == ["stalls.example.com"], "concurrent requests share one lookup"
    # The lookup finishes in the background; its (private) answer then refuses the name.
    deadline = time.monotonic() + 5
    while urls.lookup_needed("https://stalls.example.com/a", policy=urls.PUBLIC_ONLY) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(ValidationError):
        prepare("https://stalls.example.com/a", settings)
