"""ADMIN_ALLOWED_NETWORKS: the admin answers only clients in these networks, as
accounts.addresses.client_address sees them (X-Forwarded-For only from TRUSTED_PROXIES).
Anyone else gets the site's plain 404 for every address under /admin/, the admin's sign-in
page included: nothing tells them there is an admin. Empty: the admin answers everywhere."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponseBase

from accounts.addresses import Network, client_address, parse_address

# The admin's prefix in config/urls.py ("admin/" and "admin/login/"); "/admin" without the
# slash too, or APPEND_SLASH's redirect would tell outsiders where the admin is.
ADMIN_PATH = "/admin"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as error:
        raise ImproperlyConfigured(
            f"ADMIN_ALLOWED_NETWORKS: {error} (use IP addresses or CIDR networks, comma-separated)."
        ) from error


def allowed_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.ADMIN_ALLOWED_NETWORKS))


def check_admin_networks(**kwargs: object) -> list[checks.CheckMessage]:
    """System check: a typo in ADMIN_ALLOWED_NETWORKS stops the start (config.startup), rather
    than locking staff out (or everyone in) at the first request."""
    try:
        allowed_networks()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="audit.E001")]
    return []


def admin_allowed(request: HttpRequest) -> bool:
    networks = allowed_networks()
    if not networks:
        return True
    address = parse_address(client_address(request))
    return address is not None and any(
        address.version == network.version and address in network for network in networks
    )


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")


class AdminNetworksMiddleware:
    """Before routing (and before CommonMiddleware, whose slash redirect would answer first):
    an admin address from outside ADMIN_ALLOWED_NETWORKS is the site's 404 (handler404)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_admin_path(request.path_info) and not admin_allowed(request):
            raise Http404
        return self.get_response(request)
