"""Create, verify and revoke personal API tokens; authenticate `Authorization: Bearer <token>`.

Only the sha256 of a token is stored. Nothing here logs a token: log lines name the token's
id and display prefix.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from audit import log as audit
from audit.models import Event
from generator.lib.prepared import PreparedQuery

from .models import ApiToken, Scope, revoke_all_tokens

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "atl_"
SECRET_BYTES = 32
# "atl_" + secrets.token_urlsafe(32): 43 characters from the url-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"atl_[A-Za-z0-9_-]{43}")
DISPLAY_CHARS = 4
BEARER = re.compile(r"bearer(?:\s+(?P<credentials>.*))?", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class NewToken:
    """A token just created: `plaintext` goes to its owner once and is then forgotten."""

    token: ApiToken
    plaintext: str


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ScopeNotAllowed(ValueError):
    """A token asked for a scope its owner may not hold (metrics for someone not staff)."""


def create_token(
    user: User,
    name: str,
    *,
    expires_in_days: int | None = None,
    scopes: frozenset[str] = frozenset({Scope.API}),
    request: HttpRequest | None = None,
) -> NewToken:
    """A new token for `user` that may do `scopes`; it stops working `expires_in_days` from now
    (None: never). Only staff may hold the metrics scope (ScopeNotAllowed otherwise). Audited
    (token_created), by whoever `request` is signed in as (none: an operator's command)."""
    unknown = set(scopes) - set(Scope.values)
    if not scopes or unknown:
        raise ScopeNotAllowed(f"unknown or no scopes: {sorted(unknown)}")
    if Scope.METRICS in scopes and not user.is_staff:
        raise ScopeNotAllowed("only staff may hold a metrics token")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken.objects.create(
        owner=user,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + DISPLAY_CHARS],
        digest=digest(plaintext),
        expires_at=expires_at,
        scopes=sorted(str(scope) for scope in scopes),
    )
    logger.info("API token %s (%s…) created for user %s, scopes %s", token.pk, token.prefix, user.pk, token.scopes)
    audit.record(Event.TOKEN_CREATED, request=request, target=token, detail=_token_detail(token))
    return NewToken(token=token, plaintext=plaintext)


# The account page shows a new token once, after the redirect that follows its creation: it waits
# in the person's session (server-side) under this key until that page takes it, at most this long.
SHOWN_ONCE_KEY = "accounts:new-api-token"
SHOWN_ONCE_SECONDS = 300


def show_once(request: HttpRequest, new: NewToken) -> None:
    request.session[SHOWN_ONCE_KEY] = {
        "id": str(new.token.pk),
        "plaintext": new.plaintext,
        "until": time.time() + SHOWN_ONCE_SECONDS,
    }


def take_shown_once(request: HttpRequest) -> NewToken | None:
    """The token show_once() left for this person, removed from the session; None if there is
    none, it is too old, or the token was revoked meanwhile."""
    waiting = request.session.pop(SHOWN_ONCE_KEY, None)
    if not isinstance(waiting, dict) or not time.time() < waiting.get("until", 0):
        return None
    token = ApiToken.objects.filter(
        pk=str(waiting.get("id", "")), owner_id=request.user.pk, revoked_at__isnull=True
    ).first()
    if token is None or digest(str(waiting.get("plaintext", ""))) != token.digest:
        return None
    return NewToken(token=token, plaintext=waiting["plaintext"])


# Compiled once (generator.lib.prepared): every API call with a token asks it.
_ACTIVE_TOKEN = PreparedQuery(
    ApiToken,
    lambda secret_digest, now: ApiToken.objects.select_related("owner").filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        digest=secret_digest,
        revoked_at__isnull=True,
        owner__is_active=True,
    ),
    [ApiToken._meta.get_field("digest"), ApiToken._meta.get_field("expires_at")],
)


def verify_token(plaintext: str) -> ApiToken | None:
    """The active token whose secret this is (not revoked, not expired, its owner active), or None."""
    if not TOKEN_PATTERN.fullmatch(plaintext):
        return None
    token = _ACTIVE_TOKEN.first(digest(plaintext), timezone.now())
    if token is not None:
        token.touch()
    return token


def _token_detail(token: ApiToken) -> dict:
    """What the audit log keeps of a token: whose, what for, until when (never its secret)."""
    return {
        "owner": token.owner.get_username(),
        "scopes": list(token.scopes),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def revoke_token(token: ApiToken, *, request: HttpRequest | None = None) -> bool:
    """Revoke one token (audited as token_revoked); False if it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoke()
    logger.info("API token %s (%s…) of user %s revoked", token.pk, token.prefix, token.owner_id)
    audit.record(Event.TOKEN_REVOKED, request=request, target=token, detail=_token_detail(token))
    return True


def revoke_all(user: User, *, request: HttpRequest | None = None, reason: str = "revoke_all") -> int:
    """Revoke every token of `user` (after a password change, say); how many were working.
    Audited as one token_revoked entry on the person, with the count (none when there were none)."""
    count = revoke_all_tokens(user.pk)
    logger.info("All %s API tokens of user %s revoked", count, user.pk)
    if count:
        audit.record(Event.TOKEN_REVOKED, request=request, target=user, detail={"count": count, "reason": reason})
    return count


def bearer_credentials(request: HttpRequest) -> str | None:
    """What follows "Bearer" in the Authorization header ("" if nothing), or None when the
    request does not use the Bearer scheme at all (no header, or Basic from a proxy, say)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    match = BEARER.fullmatch(header.strip())
    if match is None:
        return None
    return (match.group("credentials") or "").strip()


def bearer_token(request: HttpRequest) -> ApiToken | None:
    """The request's valid bearer token, whatever its scopes; None for no, a malformed, an
    unknown, an expired or a revoked token. Endpoints then check the scope they need."""
    credentials = bearer_credentials(request)
    if not credentials:
        return None
    token = verify_token(credentials)
    if token is None:
        logger.info("Request with an unknown, expired, revoked or malformed bearer token")
    return token


def authenticate_bearer(request: HttpRequest, scope: Scope = Scope.API) -> User | None:
    """The owner of the request's valid bearer token if the token holds `scope` (the API's,
    unless said otherwise: both /api/v1 and the OpenAI-compatible /v1 call this with the
    default); None for no, a malformed, an unknown, an expired or a revoked token, and for a
    token without the scope (a metrics token sent to the API). Callers that see a Bearer
    header (bearer_credentials() is not None) and get None here must answer 401, never fall
    back to the session."""
    token = bearer_token(request)
    if token is None:
        return None
    if not token.has_scope(scope):
        logger.info("Bearer token %s (%s…) refused: it lacks the %s scope", token.pk, token.prefix, scope)
        return None
    return token.owner
