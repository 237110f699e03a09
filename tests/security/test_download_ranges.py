"""Image links to addresses that are not global unicast are refused (security review, finding 11).

Python's ip.is_global still calls several ranges global that carry an IPv4 address a connection
may end up at (IPv4-compatible, 6to4, NAT64), and multicast. Each address is tried as a
literal link and as the answer for a name, under the public policy; nothing may connect.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from generator.providers import PermanentProviderError, http
from generator.providers.http import DownloadPolicy, check_url

REFUSED = {
    # IPv4-mapped: the kernel connects to the IPv4 address.
    "::ffff:127.0.0.1": "mapped loopback",
    "::ffff:169.254.169.254": "mapped cloud metadata",
    # IPv4-compatible (deprecated): refused whatever it holds.
    "::7f00:1": "compatible loopback",
    "::a00:1": "compatible private",
    "::5db8:d822": "compatible public",
    # 6to4: 2002:AABB:CCDD::/48 is the network of AA.BB.CC.DD.
    "2002:7f00:1::1": "6to4 loopback",
    "2002:a9fe:a9fe::1": "6to4 cloud metadata",
    "2002:c0a8:101::1": "6to4 private",
    # NAT64, well-known prefix: the translator connects to the last 32 bits.
    "64:ff9b::7f00:1": "NAT64 loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 cloud metadata",
    "64:ff9b::a00:1": "NAT64 private",
    # NAT64, local-use prefix (RFC 8215): into the operator's own network.
    "64:ff9b:1::a00:1": "local NAT64 private",
    "64:ff9b:1::5db8:d822": "local NAT64 public",
    # Teredo: a server and an obfuscated client address inside.
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:0:7f00:1::": "Teredo loopback server",
    # Multicast, IPv4 and IPv6 (global scope included).
    "224.0.0.1": "IPv4 multicast",
    "239.255.255.250": "IPv4 SSDP multicast",
    "ff02::1": "link-scope multicast",
    "ff0e::1": "global-scope multicast",
    # Other ranges that are not global unicast.
    "192.88.99.1": "6to4 relay anycast",
    "100.64.0.1": "shared address space",
    "198.18.0.1": "benchmarking",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "0.0.0.0": "unspecified",
    "::": "IPv6 unspecified",
    "fc00::1": "unique local",
    "fe80::1": "link-local",
    "2001:db8::1": "documentation",
    "100::1": "discard-only",
}

ALLOWED = {
    "93.184.216.34": "public IPv4",
    "2606:2800:220:1:248:1893:25c8:1946": "public IPv6",
    "64:ff9b::5db8:d822": "NAT64 of a public address (a DNS64 network's answer)",
    "2002:5db8:d822::1": "6to4 of a public address",
}


def literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.fixture
def no_connections(monkeypatch):
    def refuse_to_connect(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the downloader tried to connect")

    monkeypatch.setattr(http, "session", refuse_to_connect)
    monkeypatch.setattr(http, "connection_pool", refuse_to_connect, raising=False)


@pytest.mark.parametrize("address", list(REFUSED), ids=list(REFUSED.values()))
def test_a_literal_link_to_the_address_is_refused(address, no_connections):
    with pytest.raises(PermanentProviderError) as caught:
        check_url(f"https://{literal(address)}/a.png", DownloadPolicy())
    assert caught.value.code == "unsafe_image_url"
    assert caught.value.message == (
        "The provider returned an image link to a private network address; it was not fetched."
    )


@pytest.mark.parametrize("address", list(REFUSED), ids=list(REFUSED.values()))
def test_a_name_resolving_to_the_address_is_refused(address, monkeypatch, no_connections):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        assert host == "images.example"
        sockaddr = (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(PermanentProviderError) as caught:
        check_url("https://images.example/a.png", DownloadPolicy())
    assert caught.value.code == "unsafe_image_url"


@pytest.mark.parametrize("address", list(ALLOWED), ids=list(ALLOWED.values()))
def test_a_public_address_passes(address, no_connections):
    assert check_url(f"https://{literal(address)}/a.png", DownloadPolicy()) is None


def test_the_table_agrees_with_the_predicate():
    assert [a for a in REFUSED if http.is_public_address(a)] == []
    assert [a for a in ALLOWED if not http.is_public_address(a)] == []
    assert not http.is_public_address("fe80::1%eth0")  # a scope id does not hide the range
