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
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..reasons import with_detail
from .base import PermanentProviderError, ProviderError, TransientProviderError

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
        raise TransientProviderError("timeout", _("The provider did not answer in time.")) from exc
    except requests.ConnectionError as exc:
        raise TransientProviderError("connection_error", _("Atelier could not reach the provider.")) from exc
    except requests.RequestException as exc:
        raise TransientProviderError("connection_error", _("The connection to the provider failed.")) from exc


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
            "authentication_failed",
            with_detail(_("The provider refused Atelier's credentials. An administrator needs to check the API key."), detail),
            request_id=request_id,
        )
    if status == 403:
        return PermanentProviderError(
            "permission_denied",
            with_detail(
                _("The provider account may not use this model or service. An administrator needs to check it."), detail
            ),
            request_id=request_id,
        )
    if status == 429:
        return TransientProviderError("rate_limited", _("The provider is busy (rate limit reached)."), request_id=request_id)
    if status in (408, 425) or status >= 500:
        return TransientProviderError(
            "provider_unavailable", _("The provider had a temporary problem."), request_id=request_id
        )
    if 300 <= status < 400:
        return PermanentProviderError(
            "unexpected_redirect", _("The provider answered with a redirect; check its base URL."), request_id=request_id
        )
    return PermanentProviderError(
        "invalid_request", with_detail(_("The provider did not accept these settings."), detail), request_id=request_id
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


def _refuse(message: str | Promise) -> PermanentProviderError:
    return PermanentProviderError("unsafe_image_url", message)


def check_url(url: str, policy: DownloadPolicy) -> None:
    """Refuse URLs that could reach into the server's own network (SSRF)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse(_("The provider returned a malformed image link.")) from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refuse(_("The provider returned an image link Atelier does not fetch."))
    if parts.scheme == "http" and origin(url) != policy.trusted_origin:
        raise _refuse(_("The provider returned a plain-http image link; Atelier only fetches https."))
    if policy.allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientProviderError("download_failed", _("The image host could not be found.")) from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise _refuse(_("The provider returned an image link to a private network address; it was not fetched."))


def download_image(url: str, policy: DownloadPolicy) -> bytes:
    """Fetch one result image at once (links expire), within a byte cap and a deadline."""
    check_url(url, policy)
    max_bytes = settings.MAX_IMAGE_BYTES
    deadline = time.monotonic() + settings.DOWNLOAD_DEADLINE_SECONDS
    read_timeout = min(30.0, settings.DOWNLOAD_DEADLINE_SECONDS)
    try:
        with session().get(url, stream=True, timeout=(5, read_timeout), allow_redirects=False) as response:
            if 300 <= response.status_code < 400:
                raise _refuse(_("The image link redirected elsewhere; Atelier does not follow image redirects."))
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientProviderError("download_failed", _("The image host had a temporary problem."))
            if response.status_code != 200:
                raise PermanentProviderError(
                    "download_failed",
                    _("The image could not be downloaded (HTTP %(status)s); the link may have expired."),
                    params={"status": response.status_code},
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
                    raise TransientProviderError("download_timeout", _("Downloading the image took too long."))
    except requests.Timeout as exc:
        raise TransientProviderError("download_timeout", _("Downloading the image took too long.")) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise TransientProviderError("download_timeout", _("Downloading the image took too long.")) from exc
        raise TransientProviderError("download_failed", _("The image could not be downloaded.")) from exc
    data = buffer.getvalue()  # the buffer's own bytes: no second copy of a 25 MB image
    if not (data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        raise PermanentProviderError("invalid_image", _("The provider's image link did not return an image."))
    return data


def _too_large(max_bytes: int) -> PermanentProviderError:
    if max_bytes >= 1024 * 1024:
        message, limit = _("The provider's image is larger than the %(limit)s MB limit."), f"{max_bytes / (1024 * 1024):g}"
    else:
        message, limit = _("The provider's image is larger than the %(limit)s bytes limit."), f"{max_bytes:,}"
    return PermanentProviderError("image_too_large", message, params={"limit": limit})
