"""Which IP addresses outgoing calls (callbacks, file imports) may reach: global unicast only.

A deny list of "private" ranges always misses one: the shared address space that clouds use
for their metadata services (``100.100.100.200``, ``100.64.0.0/10``), the IETF protocol block
(``192.0.0.192`` is another metadata address), benchmarking and reserved ranges, and every IPv6
form that carries an IPv4 address inside it (v4-mapped, IPv4-compatible, 6to4, Teredo, NAT64),
which a host may route to the embedded IPv4 address. So the rule is an allow rule: the address
must be globally reachable (``ipaddress``'s ``is_global``, IANA's special-purpose registries)
and not multicast, must not be in the blocks listed below that Python 3.11 still calls global,
and any IPv4 address embedded in it must pass the same test.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Blocks that ``is_global`` accepts on Python 3.11 but that are not global unicast targets.
_NOT_GLOBAL_V4 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments (incl. 192.0.0.192, a metadata address)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526)
    )
)
_NOT_GLOBAL_V6 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # IPv4-compatible addresses, deprecated (RFC 4291)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
        "fec0::/10",  # site-local, deprecated
    )
)
_TEREDO = ipaddress.ip_network("2001::/32")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a host may reach through ``ip``: v4-mapped, 6to4, Teredo (server and
    client) and NAT64 (well-known prefix). IPv4-compatible ``::a.b.c.d`` is refused whole."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip in _TEREDO and ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: IPAddress) -> bool:
    """True for a global unicast address whose embedded IPv4 addresses (if any) are too."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            # The kernel dials the IPv4 address itself: judge that alone.
            return is_public(ip.ipv4_mapped)
        if any(not is_public(inner) for inner in embedded_ipv4(ip)):
            return False
        blocked = any(ip in net for net in _NOT_GLOBAL_V6)
    else:
        blocked = any(ip in net for net in _NOT_GLOBAL_V4)
    return ip.is_global and not ip.is_multicast and not blocked


def forbidden(ip: IPAddress) -> bool:
    """Anything but global unicast: see the module docstring."""
    return not is_public(ip)
