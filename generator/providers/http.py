"""What every HTTP provider shares: one requests Session, error classification for
transport failures and HTTP statuses, and the guarded downloader for result URLs.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings

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


def send(method: str, url: str, *, timeout: tuple[float, float], **kwargs: Any) -> requests.Response:
    """requests, with transport failures turned into transient provider errors."""
    try:
        return session().request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
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


def error_for_status(status: int, *, request_id: str = "", detail: str = "") -> ProviderError:
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
        return TransientProviderError("rate_limited", MESSAGES["rate_limited.http_429"], request_id=request_id)
    if status in (408, 425) or status >= 500:
        return TransientProviderError("provider_unavailable", MESSAGES["provider_unavailable"], request_id=request_id)
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


def check_url(url: str, policy: DownloadPolicy) -> None:
    """Refuse URLs that could reach into the server's own network (SSRF)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse("unsafe_image_url.malformed") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refuse("unsafe_image_url.scheme")
    if parts.scheme == "http" and origin(url) != policy.trusted_origin:
        raise _refuse("unsafe_image_url.plain_http")
    if policy.allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientProviderError("download_failed", MESSAGES["download_failed.host_not_found"]) from exc
    for address in addresses:
        # Typed str | int for other socket families; for a host name it is always an IP string.
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not ip.is_global:
            raise _refuse("unsafe_image_url.private_address")


def download_image(url: str, policy: DownloadPolicy) -> bytes:
    """Fetch one result image at once (links expire), within a byte cap and a deadline."""
    check_url(url, policy)
    max_bytes = settings.MAX_IMAGE_BYTES
    deadline = time.monotonic() + settings.DOWNLOAD_DEADLINE_SECONDS
    read_timeout = min(30.0, settings.DOWNLOAD_DEADLINE_SECONDS)
    try:
        with session().get(url, stream=True, timeout=(5, read_timeout), allow_redirects=False) as response:
            if 300 <= response.status_code < 400:
                raise _refuse("unsafe_image_url.redirect")
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientProviderError("download_failed", MESSAGES["download_failed.host_unavailable"])
            if response.status_code != 200:
                raise PermanentProviderError(
                    "download_failed", MESSAGES["download_failed.http_status"], params={"status": response.status_code}
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            buffer = io.BytesIO()
            # read1 returns whatever has arrived, so a trickling body meets the deadline check
            # (iter_content would wait for a whole chunk first).
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                buffer.write(chunk)
                if buffer.tell() > max_bytes:
                    raise _too_large(max_bytes)
                if time.monotonic() > deadline:
                    raise _too_slow()
    except requests.Timeout as exc:
        raise _too_slow() from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise _too_slow() from exc
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
