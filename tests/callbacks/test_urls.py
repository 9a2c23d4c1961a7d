"""The outgoing-URL guard: host lookups are cached a while; refusals still name the field."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from steelyard.callbacks import urls
from steelyard.errors import ValidationError


@pytest.fixture()
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fake resolver: name → address, counting lookups; the cache starts empty."""
    state: dict[str, Any] = {"answers": {}, "calls": 0}

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        state["calls"] += 1
        address = state["answers"].get(host)
        if address is None:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(urls.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urls, "_resolved", {})
    monkeypatch.setattr(urls, "_allow_private", False)
    return state


def test_a_public_host_is_looked_up_once_per_ttl(
    dns: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dns["answers"]["hooks.example.com"] = "93.184.216.34"
    assert urls.needs_lookup("https://hooks.example.com/cb")
    for _ in range(5):
        urls.check_callback_target("https://hooks.example.com/cb", field="callback_url")
    assert dns["calls"] == 1
    assert not urls.needs_lookup("https://hooks.example.com/other")
    # Another port is another lookup; so is the same host once the entry is stale.
    assert urls.needs_lookup("https://hooks.example.com:8443/cb")
    now = urls.time.monotonic()
    monkeypatch.setattr(urls.time, "monotonic", lambda: now + urls.DNS_TTL + 1)
    assert urls.needs_lookup("https://hooks.example.com/cb")
    urls.check_callback_target("https://hooks.example.com/cb", field="callback_url")
    assert dns["calls"] == 2


def test_a_cached_private_answer_is_still_refused(dns: dict[str, Any]) -> None:
    dns["answers"]["sneaky.example.com"] = "10.0.0.7"
    for _ in range(2):
        with pytest.raises(ValidationError) as err:
            urls.check_callback_target("http://sneaky.example.com/", field="callback_url")
        assert err.value.field == "callback_url"
    assert dns["calls"] == 1


def test_failed_lookups_are_remembered_for_less_long(
    dns: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    urls.check_callback_target("https://nowhere.example.com/", field="callback_url")
    assert not urls.needs_lookup("https://nowhere.example.com/")
    now = urls.time.monotonic()
    monkeypatch.setattr(urls.time, "monotonic", lambda: now + urls.DNS_FAILURE_TTL + 1)
    assert urls.needs_lookup("https://nowhere.example.com/")
    dns["answers"]["nowhere.example.com"] = "10.1.2.3"  # it resolves now, to a private address
    with pytest.raises(ValidationError):
        urls.check_callback_target("https://nowhere.example.com/", field="callback_url")
    assert dns["calls"] == 2


@pytest.mark.parametrize(
    "target",
    ["ops@example.com", "https://93.184.216.34/cb", "ftp://example.com/", "not a url", ""],
)
def test_no_lookup_is_needed_for_what_is_not_a_host_name(dns: dict[str, Any], target: str) -> None:
    assert not urls.needs_lookup(target)
