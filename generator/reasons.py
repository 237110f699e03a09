"""Messages for people that are stored now and read later, each time in the reader's language.

A worker has no request, so no language: it keeps a Reason, the untranslated message id with
its named parameters, and every page or API answer translates it when it shows it. A parameter
is data (a number, the vendor's own words) or another Reason, translated in turn.

    Reason(_("DashScope takes seeds from 0 to %(max)s."), {"max": MAX_SEED})

Stored as JSON: {"message": msgid, "params": {name: value or {"message": ..., "params": ...}}}.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

# Translators: a message, then the provider's own words (often English) in brackets.
WITH_DETAIL = _("%(message)s (%(detail)s)")


class Reason:
    """An untranslated message and its parameters; str() translates it into the active language."""

    __slots__ = ("msgid", "params")

    def __init__(self, message: str | Promise | Reason, params: Mapping[str, Any] | None = None) -> None:
        if isinstance(message, Reason):
            params = {**message.params, **(params or {})}
            message = message.msgid
        elif isinstance(message, Promise):
            with translation.override(None):  # no catalogue: the lazy string gives its msgid
                message = str(message)
        self.msgid: str = message
        # A lazy parameter (a model's translatable label) is kept untranslated too.
        self.params: dict[str, Any] = {
            name: Reason(value) if isinstance(value, Promise) else value for name, value in (params or {}).items()
        }

    def render(self) -> str:
        """The message in the active language (the msgid itself where there is no translation)."""
        values = {name: str(value) if isinstance(value, Reason) else value for name, value in self.params.items()}
        if not values:
            return gettext(self.msgid)
        try:
            return gettext(self.msgid) % values
        except (KeyError, ValueError, TypeError):
            # A translation with a broken placeholder must not hide the reason: use the original.
            logger.warning("translation of %r does not take its parameters", self.msgid)
            return self.msgid % values

    __str__ = render

    def english(self) -> str:
        """What is stored in Task.error_message: for the admin, searches and logs."""
        with translation.override("en"):
            return self.render()

    def as_json(self) -> dict:
        params = {name: value.as_json() if isinstance(value, Reason) else value for name, value in self.params.items()}
        return {"message": self.msgid, "params": params}

    @classmethod
    def from_json(cls, data: object) -> Reason | None:
        """The Reason stored by as_json(), or None for anything else (older rows store nothing)."""
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            return None
        stored = data.get("params")
        params = stored if isinstance(stored, dict) else {}
        values = {
            name: cls.from_json(value) or value if isinstance(value, dict) else value for name, value in params.items()
        }
        return cls(data["message"], values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reason):
            return NotImplemented
        return (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        # Equal reasons hash alike; parameters may be unhashable (nested dicts), so only the msgid.
        return hash(self.msgid)

    def __repr__(self) -> str:
        return f"Reason({self.msgid!r}, {self.params!r})"


def with_detail(message: str | Promise | Reason, detail: str = "") -> Reason:
    """`message`, followed by the vendor's own words in brackets when there are any."""
    reason = Reason(message)
    return Reason(WITH_DETAIL, {"message": reason, "detail": detail}) if detail else reason
