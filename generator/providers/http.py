"""What every HTTP provider shares: one requests Session, error classification for
transport failures and HTTP statuses, and the guarded downloader for result URLs.
"""

from __future__ import annotations

import email.utils
import io
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from requests.utils import DEFAULT_CA_BUNDLE_PATH, requote_uri

from ..reasons import with_detail
from .errors import MESSAGES, PermanentProviderError, ProviderError, TransientProviderError

USER_AGENT = "Atelier (self-hosted image studio)"
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")

_session: requests.Session | None = None


def session() -> requests.Session:
    """One Session per process: connection reuse across calls to the same provider."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.headers["User-Agent"] = USER_AGENT
        _session.trust_env = False  # no proxy or netrc surprises from the environment
    return _session


def send(
    method: str, url: str, *, timeout: tuple[float, float], resend_safe: bool = True, **kwargs: Any
) -> requests.Response:
    """requests, with transport failures turned into transient provider errors.

    `resend_safe=False` marks a paid call that a vendor may carry out although its answer never
    arrived: a read timeout then fails for good, saying so, rather than sending (and paying for)
    it again. A connect timeout sent nothing, so it stays worth another attempt.
    """
    try:
        return session().request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.ReadTimeout as exc:
        if not resend_safe:
            raise PermanentProviderError(
                "timeout", MESSAGES["timeout.not_resent"], params={"seconds": f"{timeout[1]:g}"}
            ) from exc
        raise TransientProviderError("timeout", MESSAGES["timeout"]) from exc
    except requests.Timeout as exc:
        raise TransientProviderError("timeout", MESSAGES["timeout"]) from exc
    except requests.ConnectionError as exc:
        raise TransientProviderError("connection_error", MESSAGES["connection_error"]) from exc
    except requests.RequestException as exc:
        raise TransientProviderError("connection_error", MESSAGES["connection_error.failed"]) from exc


def json_body(response: requests.Response) -> Any:
    """The decoded JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def should_retry(response: requests.Response) -> bool | None:
    """The server's own verdict on retrying (OpenAI's x-should-retry header), or None."""
    value = response.headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)


def retry_after(response: requests.Response) -> float | None:
    """How long the server asked us to wait, in seconds, or None: retry-after-ms (OpenAI's
    milliseconds), else Retry-After (delta-seconds or an HTTP date)."""
    milliseconds = response.headers.get("retry-after-ms", "").strip()
    try:
        return max(0.0, float(milliseconds) / 1000)
    except ValueError:
        pass
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(
    status: int, *, request_id: str = "", detail: str = "", retry_after: float | None = None
) -> ProviderError:
    """A fallback classification when a provider's body names no known error code."""
    if status == 401:
        return PermanentProviderError(
            "authentication_failed", with_detail(MESSAGES["authentication_failed"], detail), request_id=request_id
        )
    if status == 403:
        return PermanentProviderError(
            "permission_denied", with_detail(MESSAGES["permission_denied.http_403"], detail), request_id=request_id
        )
    if status == 429:
        return TransientProviderError(
            "rate_limited", MESSAGES["rate_limited.http_429"], request_id=request_id, retry_after=retry_after
        )
    if status in (408, 425) or status >= 500:
        return TransientProviderError(
            "provider_unavailable", MESSAGES["provider_unavailable"], request_id=request_id, retry_after=retry_after
        )
    if 300 <= status < 400:
        return PermanentProviderError("unexpected_redirect", MESSAGES["unexpected_redirect"], request_id=request_id)
    return PermanentProviderError(
        "invalid_request", with_detail(MESSAGES["invalid_request"], detail), request_id=request_id
    )


# --- the guarded downloader ------------------------------------------------------------


@dataclass(frozen=True)
class DownloadPolicy:
    """Where a provider's result URLs may point.

    Public https only, unless the operator configured a self-hosted provider: then its own
    base URL's origin may be plain http and private or loopback addresses are allowed.
    """

    allow_private: bool = False
    trusted_origin: str = ""  # scheme://host:port of an operator-configured base URL


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _refuse(key: str) -> PermanentProviderError:
    return PermanentProviderError("unsafe_image_url", MESSAGES[key])


# Ranges the standard library (Python 3.11) still calls global although no image host lives
# there: the deprecated IPv4-compatible form, which the kernel may route to the IPv4 address
# it holds, the 6to4 relay anycast, and local-use NAT64, which translates into the operator's
# own IPv4 network (RFC 8215).
NEVER_PUBLIC = tuple(ipaddress.ip_network(net) for net in ("::/96", "192.88.99.0/24", "64:ff9b:1::/48"))
# The well-known NAT64 prefix (RFC 6052): a DNS64 resolver answers 64:ff9b::a.b.c.d for an
# IPv4-only host, and the translator connects to a.b.c.d, so that is the address to vet.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a connection to this IPv6 address may end up at."""
    found = [address for address in (ip.ipv4_mapped, ip.sixtofour) if address is not None]
    if ip.teredo:
        found += ip.teredo  # the Teredo server and the client
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public_address(address: str) -> bool:
    """True for a global unicast address, and for IPv6 only when any IPv4 address it carries
    (mapped, 6to4, Teredo, NAT64) is one too."""
    ip = ipaddress.ip_address(address.split("%")[0])  # a scope id is no part of the address
    if not ip.is_global or ip.is_multicast or any(ip in net for net in NEVER_PUBLIC if net.version == ip.version):
        return False
    return not isinstance(ip, ipaddress.IPv6Address) or all(is_public_address(str(v4)) for v4 in embedded_ipv4(ip))


@dataclass(frozen=True)
class Target:
    """A vetted image link: the addresses to connect to, and the name to speak to there."""

    scheme: str
    host: str  # ASCII (IDNA) name or IP literal: TLS SNI and the certificate are checked for it
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # every address the name resolved to, vetted, in resolver order

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def resolve(host: str, port: int) -> tuple[str, ...]:
    """The addresses of a name, each once, in the order the resolver prefers them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Typed str | int for other socket families; for a host name it is always an IP string.
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def vet(url: str, policy: DownloadPolicy) -> Target:
    """Resolve the link's host once and refuse anything that could reach into the server's
    own network (SSRF). The download then connects to these addresses only, so a name that
    answers differently the second time (DNS rebinding) changes nothing."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise _refuse("unsafe_image_url.malformed") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise _refuse("unsafe_image_url.scheme")
    if parts.scheme == "http" and origin(url) != policy.trusted_origin:
        raise _refuse("unsafe_image_url.plain_http")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientProviderError("download_failed", MESSAGES["download_failed.host_not_found"]) from exc
    if not addresses:
        raise TransientProviderError("download_failed", MESSAGES["download_failed.host_not_found"])
    if not policy.allow_private and not all(is_public_address(address) for address in addresses):
        raise _refuse("unsafe_image_url.private_address")
    path = requote_uri(parts.path or "/") + (f"?{requote_uri(parts.query)}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses)


def check_url(url: str, policy: DownloadPolicy) -> None:
    """Refuse URLs that could reach into the server's own network (SSRF)."""
    vet(url, policy)


# The trust store requests uses, so pinning the address changes nothing about certificates.
CA_BUNDLE = DEFAULT_CA_BUNDLE_PATH


def connection_pool(target: Target, address: str, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    """One connection to a vetted address that still speaks to the link's host: the socket
    goes to `address` (urllib3 resolves nothing for an IP), while TLS sends the name as SNI
    and checks the certificate against it (server_hostname); the Host header is the caller's."""
    options: dict[str, Any] = {"timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, target.port, server_hostname=target.host, cert_reqs="CERT_REQUIRED", ca_certs=CA_BUNDLE, **options
        )
    return urllib3.HTTPConnectionPool(address, target.port, **options)


def _get(
    target: Target, timeout: urllib3.Timeout, deadline: float
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """GET the link from the first vetted address that accepts a connection."""
    headers = {"Host": target.host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    failure: urllib3.exceptions.HTTPError | None = None
    for address in target.addresses:
        pool = connection_pool(target, address, timeout)
        try:
            response = pool.urlopen(
                "GET", target.path, headers=headers, redirect=False, retries=False, preload_content=False
            )
        except urllib3.exceptions.ConnectTimeoutError as exc:  # NewConnectionError too: nothing was sent
            pool.close()
            failure = exc
            if time.monotonic() > deadline:
                break
            continue
        except BaseException:
            pool.close()
            raise
        return pool, response
    assert failure is not None  # vet() never returns a target without an address
    raise failure


def download_image(url: str, policy: DownloadPolicy) -> bytes:
    """Fetch one result image at once (links expire), within a byte cap and a deadline."""
    target = vet(url, policy)
    max_bytes = settings.MAX_IMAGE_BYTES
    deadline = time.monotonic() + settings.DOWNLOAD_DEADLINE_SECONDS
    timeout = urllib3.Timeout(connect=5, read=min(30.0, settings.DOWNLOAD_DEADLINE_SECONDS))
    try:
        pool, response = _get(target, timeout, deadline)
        try:
            if 300 <= response.status < 400:
                raise _refuse("unsafe_image_url.redirect")
            if response.status >= 500 or response.status == 429:
                raise TransientProviderError("download_failed", MESSAGES["download_failed.host_unavailable"])
            if response.status != 200:
                raise PermanentProviderError(
                    "download_failed", MESSAGES["download_failed.http_status"], params={"status": response.status}
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            buffer = io.BytesIO()
            # read1 returns whatever has arrived, so a trickling body meets the deadline check
            # (a whole-chunk read would wait for the chunk first).
            while chunk := response.read1(64 * 1024, decode_content=True):
                buffer.write(chunk)
                if buffer.tell() > max_bytes:
                    raise _too_large(max_bytes)
                if time.monotonic() > deadline:
                    raise _too_slow()
        finally:
            response.close()
            pool.close()
    except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError) as exc:
        if isinstance(exc, urllib3.exceptions.NewConnectionError):  # refused or unreachable, not slow
            raise TransientProviderError("download_failed", MESSAGES["download_failed"]) from exc
        raise _too_slow() from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientProviderError("download_failed", MESSAGES["download_failed"]) from exc
    data = buffer.getvalue()  # the buffer's own bytes: no second copy of a 25 MB image
    if not (data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        raise PermanentProviderError("invalid_image", MESSAGES["invalid_image.not_an_image"])
    return data


def _too_slow() -> TransientProviderError:
    return TransientProviderError("download_timeout", MESSAGES["download_timeout"])


def _too_large(max_bytes: int) -> PermanentProviderError:
    if max_bytes >= 1024 * 1024:
        key, limit = "image_too_large", f"{max_bytes / (1024 * 1024):g}"
    else:
        key, limit = "image_too_large.bytes", f"{max_bytes:,}"
    return PermanentProviderError("image_too_large", MESSAGES[key], params={"limit": limit})
