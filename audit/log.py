"""audit.log.record: the one way an audit entry is written.

Call it where the event really happens (the view, the admin action, the command), after the
change it records has been made; inside a transaction it is written with it (and rolled back
with it).

Never put a secret in an entry: no token or share-link plaintext (nor a URL carrying one), no
password, no prompt (a task is described by its status, not its words: see LOG_PROMPTS).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from accounts.addresses import client_address

from .models import AuditEntry, Event

TARGET_REPR_LENGTH = 200


def describe(target: models.Model) -> str:
    """What the entry calls its object: str(target), except for a task, whose str() starts with
    its prompt (private to its owner, kept out of logs unless LOG_PROMPTS)."""
    if target._meta.label_lower == "generator.task":
        status = getattr(target, "get_status_display", lambda: "")()
        return f"{target._meta.verbose_name} {target.pk} ({status})"
    return str(target)[:TARGET_REPR_LENGTH]


def record(
    event: Event | str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    target: models.Model | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry. `actor` defaults to the request's signed-in person; the address is the
    client's as the trusted-proxy settings define it (accounts.addresses.client_address)."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    return write(event, request=request, actor=actor, target=target, detail=detail)


def write(
    event: Event | str,
    *,
    request: HttpRequest | None,
    actor: Any,
    target: models.Model | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """record() with exactly this actor (None: nobody, even if the request is signed in)."""
    address = client_address(request) if request is not None else None
    return AuditEntry.objects.create(
        event=event,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        address=address or None,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=describe(target)[:TARGET_REPR_LENGTH] if target is not None else "",
        detail=detail or {},
    )
