"""The default ALLOWED_HOSTS: this machine's own names and addresses (settings, when ALLOWED_HOSTS
is not set).

So that `BIND=0.0.0.0 make run` is reachable from a phone on the same network as
http://<this machine's address or name>:8000/ without configuring anything, while a request
naming any other host is still refused (400). Found with the standard library only, quickly and
without failing: each lookup is bounded by a deadline, and one that fails adds nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]
LOOKUP_SECONDS = 1.0
# Routable-looking destinations for the UDP "connect" trick: connecting a datagram socket picks
# the outgoing interface (the address the network sees) and sends nothing.
PROBES = ((socket.AF_INET, "10.255.255.255"), (socket.AF_INET6, "2001:db8::1"))


def host_entry(found: str) -> str | None:
    """A name or address as a Host header carries it (IPv6 in brackets), or None for an address
    no browser can use: link-local (it needs a zone), unspecified, multicast."""
    try:
        address = ipaddress.ip_address(found.split("%", 1)[0])
    except ValueError:
        return found.lower().rstrip(".") or None  # a name
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def names() -> list[str]:
    """The host name, its fully qualified name (from the resolver's canonical name, not a
    reverse lookup) and the name.local that mDNS announces."""
    hostname = socket.gethostname()
    found = [hostname]
    if "." not in hostname:
        found.append(f"{hostname}.local")
    for *_rest, canonical, _address in socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME):
        if canonical:
            found.append(canonical)
    return found


def resolved_addresses() -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]


def outward_addresses() -> list[str]:
    found = []
    for family, destination in PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((destination, 9))
                found.append(str(sock.getsockname()[0]))
        except OSError:
            continue  # no route of that family
    return found


def interface_addresses() -> list[str]:
    """Every interface's IPv4 address (ioctl SIOCGIFADDR) and IPv6 addresses (/proc), on Linux."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            try:
                request = struct.pack("256s", name.encode()[:15])
                answer = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(answer[20:24]))
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        raw = line.split()[0] if line.split() else ""
        if len(raw) == 32:
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    return found


def _within(seconds: float, lookup: Callable[[], Iterable[str]]) -> list[str]:
    """lookup()'s answer if it comes within `seconds` without an error, else nothing (a resolver
    that hangs must not hold up a start)."""
    answer: list[str] = []

    def run() -> None:
        try:
            answer.extend(lookup())
        except (OSError, UnicodeError, ValueError):
            pass

    thread = threading.Thread(target=run, name="atelier-own-hosts", daemon=True)
    thread.start()
    thread.join(seconds)
    return list(answer) if not thread.is_alive() else []


def own_hosts(seconds: float = LOOKUP_SECONDS) -> list[str]:
    """localhost and the loopback addresses, then this machine's names and addresses."""
    hosts = list(LOOPBACK)
    for lookup in (names, resolved_addresses, outward_addresses, interface_addresses):
        for found in _within(seconds, lookup):
            entry = host_entry(found)
            if entry and entry not in hosts:
                hosts.append(entry)
    return hosts
