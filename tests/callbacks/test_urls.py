"""The outgoing-URL check: the service's check reads the DNS cache only; lookups are cached."""

from __future__ import annotations

import time

import pytest

from steelyard.callbacks import urls
from steelyard.errors import ValidationError
from tests.callbacks.fakedns import FakeDns


def test_the_check_a_service_runs_never_looks_a_name_up(dns: FakeDns) -> None:
    dns.answers["hooks.example.com"] = "10.0.0.7"
    # Not looked up yet: let through (checked again when the callback is sent).
    assert urls.check_callback_target(
        "https://hooks.example.com/cb", field="callback", policy=urls.PUBLIC_ONLY
    )
    assert urls.check_url("https://hooks.example.com/cb", field="callback", policy=urls.PUBLIC_ONLY)
    assert dns.calls == []
    assert urls.lookup_needed("https://hooks.example.com/cb", policy=urls.PUBLIC_ONLY) == (
        "hooks.example.com",
        443,
    )
    urls.resolve_host("hooks.example.com", 443)
    # Now the cached (private) answer refuses it, still without a lookup of its own.
    with pytest.raises(ValidationError) as err:
        urls.check_callback_target(
            "https://hooks.example.com/cb", field="callback", policy=urls.PUBLIC_ONLY
        )
    assert err.value.field == "callback"
    assert dns.calls == ["hooks.example.com"]


def test_a_public_host_is_looked_up_once_per_ttl(
    dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns.answers["hooks.example.com"] = "93.184.216.34"
    for _ in range(5):
        urls.check_url(
            "https://hooks.example.com/cb",
            field="callback_url",
            policy=urls.PUBLIC_ONLY,
            resolve=True,
        )
    assert dns.calls == ["hooks.example.com"]
    assert urls.lookup_needed("https://hooks.example.com/other", policy=urls.PUBLIC_ONLY) is None
    # Another port is another lookup; so is the same host once the entry is stale.
    assert urls.lookup_needed("https://hooks.example.com:8443/cb", policy=urls.PUBLIC_ONLY) == (
        "hooks.example.com",
        8443,
    )
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + urls.DNS_TTL + 1)
    assert urls.lookup_needed("https://hooks.example.com/cb", policy=urls.PUBLIC_ONLY) is not None
    urls.check_url(
        "https://hooks.example.com/cb", field="callback_url", policy=urls.PUBLIC_ONLY, resolve=True
    )
    assert len(dns.calls) == 2


def test_a_cached_private_answer_is_still_refused(dns: FakeDns) -> None:
    dns.answers["sneaky.example.com"] = "10.0.0.7"
    for _ in range(2):
        with pytest.raises(ValidationError) as err:
            urls.check_url(
                "http://sneaky.example.com/",
                field="callback_url",
                policy=urls.PUBLIC_ONLY,
                resolve=True,
            )
        assert err.value.field == "callback_url"
    assert dns.calls == ["sneaky.example.com"]


def test_failed_lookups_are_remembered_for_less_long(
    dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls.check_url(
        "https://nowhere.example.com/", field="callback_url", policy=urls.PUBLIC_ONLY, resolve=True
    )
    assert urls.lookup_needed("https://nowhere.example.com/", policy=urls.PUBLIC_ONLY) is None
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + urls.DNS_FAILURE_TTL + 1)
    assert urls.lookup_needed("https://nowhere.example.com/", policy=urls.PUBLIC_ONLY) is not None
    dns.answers["nowhere.example.com"] = "10.1.2.3"  # it resolves now, to a private address
    with pytest.raises(ValidationError):
        urls.check_url(
            "https://nowhere.example.com/",
            field="callback_url",
            policy=urls.PUBLIC_ONLY,
            resolve=True,
        )
    assert len(dns.calls) == 2


@pytest.mark.parametrize(
    "target",
    ["ops@example.com", "https://93.184.216.34/cb", "ftp://example.com/", "not a url", ""],
)
def test_no_lookup_is_needed_for_what_is_not_a_host_name(dns: FakeDns, target: str) -> None:
    assert urls.lookup_needed(target, policy=urls.PUBLIC_ONLY) is None


@pytest.mark.parametrize(
    "url", ["http://[::1/", "http://example.com:99999/", "https:///path", "javascript:alert(1)"]
)
def test_malformed_urls_are_a_400_naming_the_field(dns: FakeDns, url: str) -> None:
    with pytest.raises(ValidationError) as err:
        urls.check_url(url, field="callback_url", policy=urls.PUBLIC_ONLY, resolve=True)
    assert err.value.field == "callback_url"
    assert dns.calls == []


def test_a_policy_that_allows_private_targets_needs_no_lookup(dns: FakeDns) -> None:
    allowed = urls.TargetPolicy(allow_private=True)
    dns.answers["intranet.example.com"] = "10.0.0.7"
    assert urls.lookup_needed("http://intranet.example.com/", policy=allowed) is None
    for url in ("http://intranet.example.com/", "http://127.0.0.1:8080/hook", "http://localhost/"):
        assert urls.check_url(url, field="callback_url", policy=allowed, resolve=True) == url
    assert dns.calls == []
    with pytest.raises(ValidationError):
        urls.check_url("http://127.0.0.1:8080/hook", field="callback_url", policy=urls.PUBLIC_ONLY)


@pytest.mark.parametrize("target", ["ops@example.com", "http://127.0.0.1/", "https://a.example/"])
def test_a_service_checks_the_form_of_a_target_only(dns: FakeDns, target: str) -> None:
    assert urls.check_callback_form(target, field="callback") == target
    assert dns.calls == []


@pytest.mark.parametrize("target", ["ftp://example.com/", "not a url", "https:///path"])
def test_a_target_of_the_wrong_form_is_a_400_naming_the_field(target: str) -> None:
    with pytest.raises(ValidationError) as err:
        urls.check_callback_form(target, field="callback")
    assert err.value.field == "callback"
