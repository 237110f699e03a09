"""The client's address, for every per-address limit (settings.RATELIMIT_IP_META_KEY).

Behind a reverse proxy REMOTE_ADDR is the proxy, so counting it would put every visitor in one
bucket; but X-Forwarded-For is whatever the client wrote, so believing it would let anyone pick
a fresh bucket per request. The header is read only when REMOTE_ADDR is one of
settings.TRUSTED_PROXIES, and then from the right: each trusted proxy appends the address it
saw, so the right-most entry that is not itself a trusted proxy is the client. Anything to its
left was written by the client and is never used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as error:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {error} (use IP addresses or CIDR networks).") from error


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def check_trusted_proxies(**kwargs: object) -> list[checks.CheckMessage]:
    """System check: a typo in TRUSTED_PROXIES is refused at start, not at the first sign-in."""
    try:
        trusted_networks()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="accounts.E001")]
    return []


def parse_address(text: str) -> Address | None:
    """An address as proxies write it ("203.0.113.7", "203.0.113.7:5123", "[2001:db8::1]:443"),
    or None. IPv4-mapped IPv6 addresses count as the IPv4 address."""
    text = text.strip()
    if text.startswith("["):  # [IPv6] or [IPv6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The address of whoever sent this request, as a plain IP string (django-ratelimit masks it)."""
    remote = parse_address(request.META.get("REMOTE_ADDR", ""))
    networks = trusted_networks()
    if remote is None:
        # A Unix-socket peer (BIND=unix:…) has no address: only a proxy on this machine can be
        # it, so it is trusted like one; without X-Forwarded-For everyone shares its bucket.
        nearest: Address = ipaddress.IPv4Address("127.0.0.1")
    elif not networks or not _is_trusted(remote, networks):
        return str(remote)
    else:
        nearest = remote  # the last hop we know to be honest
    for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        if not entry.strip():
            continue
        address = parse_address(entry)
        if address is None:
            # Not an address, yet written by a trusted proxy: count it as that proxy's own
            # (stricter: everyone behind it shares a bucket) rather than trust what follows.
            break
        if not _is_trusted(address, networks):
            return str(address)
        nearest = address
    return str(nearest)
