"""SSRF: only global unicast addresses are called, at input, before a send, at connect and on
every redirect of a file import."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpcore
import httpx
import pytest

from steelyard.callbacks import addresses, urls
from steelyard.callbacks.transport import TargetRefused, _CheckedBackend, refused_at_connect
from steelyard.config import Settings
from steelyard.errors import ValidationError
from steelyard.files import service as files
from tests.callbacks.fakedns import FakeDns

REFUSED = [
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "100.100.100.200",  # a cloud metadata service
    "192.0.0.192",  # IETF protocol block; another metadata address
    "192.88.99.1",  # 6to4 relay anycast
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",
    "127.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "224.0.0.1",  # multicast
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # a cloud metadata service over IPv6
    "ff02::1",
    "ff0e::1",  # global-scope multicast
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "100::1",
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64
    "::ffff:127.0.0.1",  # v4-mapped
    "::ffff:100.100.100.200",
    "::ffff:0:a9fe:a9fe",  # v4-translated
    "::7f00:1",  # IPv4-compatible
    "::808:808",  # IPv4-compatible, even of a public address (deprecated form)
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # v4-mapped of a public address: the kernel dials 8.8.8.8
    "2002:808:808::",  # 6to4 of a public address
    "64:ff9b::808:808",  # NAT64 of a public address
]


def _url(address: str, path: str = "/hook") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}{path}"


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert addresses.forbidden(ipaddress.ip_address(address))
    with pytest.raises(ValidationError) as err:
        urls.check_url(_url(address), field="callback_url", policy=urls.PUBLIC_ONLY)
    assert err.value.field == "callback_url"


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert not addresses.forbidden(ipaddress.ip_address(address))
    assert urls.check_url(_url(address), field="callback_url", policy=urls.PUBLIC_ONLY) == _url(
        address
    )


@pytest.mark.parametrize("address", REFUSED)
def test_names_resolving_to_them_are_refused_when_checked_and_at_connect(
    dns: FakeDns, address: str
) -> None:
    dns.answers["hooks.example.com"] = address
    with pytest.raises(ValidationError) as err:
        urls.check_url(
            "https://hooks.example.com/cb", field="callback", policy=urls.PUBLIC_ONLY, resolve=True
        )
    assert err.value.field == "callback"
    with pytest.raises(TargetRefused):
        _CheckedBackend(urls.PUBLIC_ONLY).connect_tcp("hooks.example.com", 443, timeout=1)


@pytest.mark.parametrize("address", ALLOWED)
def test_names_resolving_to_public_addresses_pass_the_check(dns: FakeDns, address: str) -> None:
    dns.answers["hooks.example.com"] = address
    # Checked only: nothing here dials a public address.
    assert urls.check_url(
        "https://hooks.example.com/cb", field="callback", policy=urls.PUBLIC_ONLY, resolve=True
    )


def test_one_private_address_among_public_ones_refuses_the_name(dns: FakeDns) -> None:
    dns.answers["mixed.example.com"] = ("8.8.8.8", "100.100.100.200", "1.1.1.1")
    with pytest.raises(TargetRefused):
        _CheckedBackend(urls.PUBLIC_ONLY).connect_tcp("mixed.example.com", 80, timeout=1)


def test_a_refusal_at_connect_is_recognisable_through_httpx(dns: FakeDns) -> None:
    from steelyard.callbacks.transport import checked_transport

    dns.answers["metadata.example.com"] = "100.100.100.200"
    with (
        httpx.Client(transport=checked_transport(urls.PUBLIC_ONLY)) as client,
        pytest.raises(httpx.ConnectError) as err,
    ):
        client.get("http://metadata.example.com/latest/meta-data")
    assert refused_at_connect(err.value)
    assert not refused_at_connect(httpx.ConnectError("connection refused"))
    assert not refused_at_connect(httpcore.ConnectError("cannot resolve"))


# --- file imports ------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="k", database_url="sqlite://")


@pytest.mark.parametrize(
    "location",
    [
        "http://100.100.100.200/latest/meta-data/",
        "http://[2002:a9fe:a9fe::]/latest/meta-data/",
        "http://metadata.example.com/latest/meta-data/",  # a name resolving to it
    ],
)
def test_an_import_redirected_to_a_metadata_address_is_refused(
    dns: FakeDns, settings: Settings, location: str
) -> None:
    dns.answers["metadata.example.com"] = "100.100.100.200"
    requested: list[str] = []

    def remote(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(302, headers={"location": location})

    with pytest.raises(ValidationError) as err:
        files.fetch_url(
            settings,
            file_url="https://93.184.215.14/cat.png",
            transport=httpx.MockTransport(remote),
        )
    assert err.value.field == "file_url"
    assert requested == ["https://93.184.215.14/cat.png"], "the refused hop was requested"


def test_an_import_of_a_name_resolving_to_shared_address_space_is_refused(
    dns: FakeDns, settings: Settings
) -> None:
    dns.answers["cgnat.example.com"] = "100.64.0.1"

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be fetched")

    with pytest.raises(ValidationError) as err:
        files.fetch_url(
            settings,
            file_url="https://cgnat.example.com/cat.png",
            transport=httpx.MockTransport(never),
        )
    assert err.value.field == "file_url"
