"""Provider failures: the exception classes and the one catalogue of what people are told.

A catalogue key is the error code the sentence is shown under ("rate_limited"), or that code
and a qualifier ("rate_limited.http_429") where a situation needs other words under the same
code; code_of() gives the code back. Messages that name one vendor's product (the WebUI, a
VolcEngine API action) stay in that vendor's module.

Every sentence is written once, here: the msgids are what locale/ translates and what tasks
store (Task.error_reason), so rewording one is a translation change, not a refactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..reasons import Reason, with_detail


class Kind(StrEnum):
    """What a failure asks of whom: the four classes every vendor's error table is sorted into."""

    TRANSIENT = "transient"  # worth another attempt (busy, down, a dropped connection)
    ACCOUNT = "account"  # an administrator must act: key, billing, quota, model access, retirement
    CONTENT = "content"  # the person can reword the prompt (moderation)
    REQUEST = "request"  # a setting the provider refused; the message names it
    PROVIDER = "provider"  # the vendor failed the job or sent an answer Atelier cannot use


class ProviderError(Exception):
    """A failure a person can read. `transient` ones are worth another attempt.

    `message` is a lazy translatable string with named placeholders, filled from `params`
    (or a Reason): the task keeps it untranslated, and each reader sees it in their language.
    The code is for staff and clients, and is never translated.
    """

    transient = False

    def __init__(
        self,
        code: str,
        message: str | Promise | Reason,
        *,
        params: Mapping[str, Any] | None = None,
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.reason = Reason(message, params)
        super().__init__(self.reason.english())
        self.code = code
        self.request_id = request_id
        # Seconds the provider asked us to wait (its Retry-After header), when it said.
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        """The reason in the active language."""
        return self.reason.render()

    @property
    def kind(self) -> Kind:
        if self.transient:
            return Kind.TRANSIENT
        kind = kind_of(self.code)
        # A busy answer the server said not to retry (x-should-retry: false), or a paid call
        # that timed out after it was sent: permanent, and nobody's to fix.
        return Kind.PROVIDER if kind is Kind.TRANSIENT else kind


class TransientProviderError(ProviderError):
    transient = True


class PermanentProviderError(ProviderError):
    transient = False


# Codes a retry can cure, for providers that pick the error class from the code alone.
TRANSIENT_CODES = frozenset({"rate_limited", "provider_unavailable", "timeout"})

KIND_OF_CODE: dict[str, Kind] = {
    **{code: Kind.ACCOUNT for code in ("authentication_failed", "permission_denied", "quota_exhausted")},
    **{code: Kind.ACCOUNT for code in ("model_not_found", "model_retired", "unexpected_redirect")},
    **{code: Kind.CONTENT for code in ("content_rejected", "output_rejected")},
    "invalid_request": Kind.REQUEST,
    **{code: Kind.TRANSIENT for code in TRANSIENT_CODES | {"connection_error"}},
}


def kind_of(code: str) -> Kind:
    return KIND_OF_CODE.get(code, Kind.PROVIDER)


# The vendor's own words are added to these codes' messages (an authentication error is left
# out: its text can echo part of the API key).
CODES_WITH_DETAIL = frozenset(
    {"invalid_request", "permission_denied", "quota_exhausted", "model_not_found", "provider_error"}
)
MAX_DETAIL_CHARS = 200

MESSAGES: dict[str, Promise] = {
    # --- reaching the provider
    "timeout": _("The provider did not answer in time."),
    "timeout.unfinished": _("The provider did not finish the picture in time."),
    "timeout.not_resent": _(
        "The provider did not answer within %(seconds)s seconds. Atelier did not send the request again, because "
        "the provider may still have made (and charged for) the pictures."
    ),
    "timeout.outcome_unknown": _(
        "The provider stopped waiting for its own answer. Atelier did not send the request again, because the "
        "provider may still have made (and charged for) the pictures."
    ),
    "timeout.unfinished_after": _("The provider did not finish the picture within %(seconds)s seconds."),
    "connection_error": _("Atelier could not reach the provider."),
    "connection_error.failed": _("The connection to the provider failed."),
    "unexpected_redirect": _("The provider answered with a redirect; check its base URL."),
    "rate_limited": _("The provider is busy (rate or concurrency limit reached)."),
    # A bare 429 says nothing about concurrency.
    "rate_limited.http_429": _("The provider is busy (rate limit reached)."),
    "provider_unavailable": _("The provider had a temporary problem."),
    "provider_unavailable.reason": _("The provider had a temporary problem (%(reason)s)."),
    # --- the account
    "authentication_failed": _(
        "The provider refused Atelier's credentials. An administrator needs to check the API key."
    ),
    "authentication_failed.clock": _(
        "The provider refused the request's timestamp. An administrator needs to check that the server clock is "
        "correct (NTP)."
    ),
    "permission_denied": _(
        "The provider account may not use this model. An administrator needs to enable it with the provider."
    ),
    # A bare 403 cannot tell a model from a whole service.
    "permission_denied.http_403": _(
        "The provider account may not use this model or service. An administrator needs to check it."
    ),
    "permission_denied.model_activation": _(
        "The provider denied access to this model; it may need to be activated for the account."
    ),
    "permission_denied.service_activation": _(
        "The provider account may not use this model (access denied, or the service is not activated for it)."
    ),
    "quota_exhausted": _("The provider account has run out of credit or quota."),
    "quota_exhausted.usage_cap": _(
        "The provider account reached the usage limit set in the provider's console. An administrator needs to "
        "raise the limit or turn off the safe-experience mode there."
    ),
    "quota_exhausted.free_quota": _(
        "The provider account's free quota for this model is used up. An administrator needs to turn on paid "
        "use in the provider's console, or offer another model."
    ),
    "quota_exhausted.billing": _(
        "The provider account has an unpaid bill or has not bought this service. An administrator needs to settle "
        "it in the provider's console."
    ),
    # --- the request
    "invalid_request": _("The provider did not accept these settings."),
    "invalid_request.image_count": _("%(model)s makes 1 to %(max)s images at once."),
    "model_not_found": _("The provider does not know this model. An administrator needs to check the model list."),
    "model_not_found.not_offered": _("The provider does not offer this model."),
    "model_retired": _(
        "This model was retired by the provider. Choose another model; an administrator needs to update the model list."
    ),
    "permission_denied.verification": _(
        "The provider requires the account's organization to be verified before it may use this model. An "
        "administrator needs to verify it in the provider's console."
    ),
    "provider_unavailable.endpoint_closed": _("The provider's endpoint for this model is closed for the moment."),
    "content_rejected": _("The provider rejected this prompt as sensitive content."),
    "content_rejected.intellectual_property": _(
        "The provider refused this prompt as a possible infringement of someone's intellectual property (a brand, "
        "a character, an artwork). Try rewording it."
    ),
    "output_rejected": _(
        "The provider's safety check rejected the generated picture. Try rewording the prompt or another seed."
    ),
    # --- the job
    "generation_failed": _("The provider could not make the picture."),
    "generation_failed.safety_check": _("The provider's safety check failed internally."),
    "generation_failed.canceled": _("The provider canceled the job."),
    "generation_failed.no_picture": _("The provider finished without returning a picture."),
    "generation_failed.too_few_pictures": _("The provider returned %(count)s of %(wanted)s pictures."),
    "task_expired": _("The provider no longer knows this job (its id expired or is invalid)."),
    "task_expired.retry": _("The provider no longer has this job (it expired). Please try again."),
    # --- answers Atelier cannot use
    "provider_error": _("The provider answered with an error Atelier does not recognise."),
    "provider_error.reported": _("The provider reported an error Atelier does not recognise."),
    "provider_error.unreadable": _("The provider's answer could not be read."),
    "provider_error.not_understood": _("The provider sent an answer Atelier did not understand."),
    "provider_error.too_few_images": _("The provider returned fewer images than asked for."),
    "provider_error.no_such_path": _(
        "The provider's address answered “not found”. An administrator needs to check its base URL."
    ),
    "invalid_image": _("The provider returned an image Atelier could not read."),
    "invalid_image.not_an_image": _("The provider's image link did not return an image."),
    "image_too_large": _("The provider's image is larger than the %(limit)s MB limit."),
    "image_too_large.bytes": _("The provider's image is larger than the %(limit)s bytes limit."),
    # --- result links (the guarded downloader)
    "unsafe_image_url.malformed": _("The provider returned a malformed image link."),
    "unsafe_image_url.scheme": _("The provider returned an image link Atelier does not fetch."),
    "unsafe_image_url.plain_http": _("The provider returned a plain-http image link; Atelier only fetches https."),
    "unsafe_image_url.private_address": _(
        "The provider returned an image link to a private network address; it was not fetched."
    ),
    "unsafe_image_url.redirect": _("The image link redirected elsewhere; Atelier does not follow image redirects."),
    "download_failed": _("The image could not be downloaded."),
    "download_failed.host_not_found": _("The image host could not be found."),
    "download_failed.host_unavailable": _("The image host had a temporary problem."),
    "download_failed.http_status": _("The image could not be downloaded (HTTP %(status)s); the link may have expired."),
    "download_timeout": _("Downloading the image took too long."),
}


def code_of(key: str) -> str:
    """The error code a catalogue key is shown under: "rate_limited.http_429" -> "rate_limited"."""
    return key.partition(".")[0]


def short_detail(value: Any) -> str:
    """A vendor message, made short and single-line for people to read."""
    text = " ".join(str(value or "").split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def error_for(
    key: str,
    *,
    detail: str = "",
    request_id: str = "",
    retry_after: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> ProviderError:
    """The error for a catalogue key (MESSAGES), transient or not by its code, with the vendor's
    words added where they are safe to show (CODES_WITH_DETAIL)."""
    code = code_of(key)
    message: Promise | Reason = MESSAGES[key]
    if detail and code in CODES_WITH_DETAIL:
        message = with_detail(message, short_detail(detail))
    if code in TRANSIENT_CODES:
        return TransientProviderError(code, message, params=params, request_id=request_id, retry_after=retry_after)
    return PermanentProviderError(code, message, params=params, request_id=request_id)
