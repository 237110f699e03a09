"""Sharing in the JSON API (/api/v1/, routed from generator.api.urls): publishing one's own
images, Explore with likes and favourites, and share links.

The same rules as the pages (sharing.views), through the same service functions: another
person's image or link is a 404 and nothing changes; only visible publications (published, not
hidden by staff) are listed, served or liked. With SHARING=off every one of these is a 404, and
the share-link ones are a 404 unless SHARING=public, whoever asks: as if they did not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.http import AuthenticatedHttpRequest
from generator.api.http import (
    LONE_SURROGATE,
    BadRequest,
    api_view,
    bad_query,
    error,
    json_object,
    list_page,
    page_limit,
    text_query,
)
from generator.api.serializers import isoformat
from generator.models import Image
from generator.ownership import owned

from . import links, publishing, reactions
from .explore import SORTS, ExploreFilters, explore_page
from .models import Publication, SharedImage, ShareLink
from .switch import PUBLIC, TEAM, allows
from .views import explore as explore_pages

View = Callable[..., HttpResponseBase]


def sharing_api(level: str) -> Callable[[View], View]:
    """A JSON 404 unless SHARING reaches `level`, before anything else (signed in or not,
    DEBUG or not): the endpoint does not exist."""

    def decorate(view: View) -> View:
        @wraps(view)  # keeps api_view's csrf_exempt and login_not_required marks
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not allows(level):
                return error(404, "not_found", _("No such endpoint or object."))
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


# --- request bodies ---------------------------------------------------------------------------


def _optional_object(request: HttpRequest) -> dict:
    """The JSON object sent, or {} for an empty body (every field is optional)."""
    try:
        empty = not request.body
    except RequestDataTooBig:
        empty = False  # json_object answers 413
    return {} if empty else json_object(request)


def _boolean(body: dict, field: str, default: bool, details: dict) -> bool:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        details[field] = [_("Expected true or false.")]
        return default
    return value


def _title(body: dict, default: str, details: dict) -> str:
    value = body.get("title")
    if value is None:
        return default
    if not isinstance(value, str):
        details["title"] = [_("Expected a string.")]
    elif LONE_SURROGATE.search(value) or "\x00" in value:
        details["title"] = [_("Contains characters that cannot be stored (NUL or a lone surrogate).")]
    elif len(value.strip()) > publishing.MAX_TITLE_LENGTH:
        details["title"] = [
            _("Keep the title to %(limit_value)d characters or fewer.") % {"limit_value": publishing.MAX_TITLE_LENGTH}
        ]
    else:
        return value.strip()
    return default


def _refuse(details: dict) -> None:
    if details:
        raise BadRequest(error(400, "validation_error", _("Some fields are not valid."), details))


# --- publishing one's own images --------------------------------------------------------------


def publication_json(publication: Publication) -> dict:
    """A publication as its author sees it: with staff's hiding and its reason."""
    return {
        "id": str(publication.pk),
        "image_id": str(publication.image_id),
        "title": publication.title,
        "show_prompt": publication.show_prompt,
        "published_at": isoformat(publication.published_at),
        **_counts(publication),
        "hidden": publication.is_hidden,
        "hidden_reason": publication.hidden_reason if publication.is_hidden else None,
    }


def _counts(publication: Publication) -> dict:
    return {
        "like_count": publication.like_count,
        "favourite_count": publication.favourite_count,
        "view_count": publication.view_count,
        "download_count": publication.download_count,
    }


@sharing_api(TEAM)
@api_view("POST", "DELETE")
def image_publish(request: AuthenticatedHttpRequest, image_id: uuid.UUID) -> HttpResponse:
    """POST publishes (201) or changes the choices of a publication (200): a field left out
    keeps its value (at first: no title, prompt shown). DELETE unpublishes (204, also when
    it was not published)."""
    image = owned(Image, request).select_related("task", "publication").filter(pk=image_id).first()
    if image is None:
        return error(404, "not_found", _("No such image."))
    if request.method == "DELETE":
        publishing.unpublish(image, request=request)
        return HttpResponse(status=204)
    body = _optional_object(request)
    current = publishing.publication_of(image)
    details: dict = {}
    title = _title(body, current.title if current else "", details)
    show_prompt = _boolean(body, "show_prompt", current.show_prompt if current else True, details)
    _refuse(details)
    publication = publishing.publish(image, title=title, show_prompt=show_prompt, request=request)
    return JsonResponse(publication_json(publication), status=200 if current else 201)


# --- Explore ------------------------------------------------------------------------------------


def explore_item_json(publication: Any) -> dict:
    """A visible publication as anyone signed in sees it (rows of explore.for_viewer)."""
    image = publication.image
    return {
        "id": str(publication.pk),
        "title": publication.title,
        "author": publication.owner.get_username(),
        "provider": publication.provider,
        "model": publication.model,
        "prompt": publication.prompt if publication.show_prompt else None,
        "width": image.width,
        "height": image.height,
        "published_at": isoformat(publication.published_at),
        **_counts(publication),
        "liked": publication.viewer_likes,
        "favourited": publication.viewer_favourites,
        "url": reverse("api:explore_file", args=[publication.pk]),
        "thumbnail_url": reverse("api:explore_thumbnail", args=[publication.pk]),
    }


@sharing_api(TEAM)
@api_view("GET")
def explore(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Everyone's visible publications. As on the Explore page, a cursor that is not one of
    ours (or of another sort) reads as the first page; an unknown sort is a 400."""
    sort = request.GET.get("sort", "")
    if sort and sort not in SORTS:
        raise bad_query("sort", _("Use one of: %(values)s.") % {"values": ", ".join(SORTS)})
    for field in ("model", "q"):
        text_query(request, field)  # a NUL is a 400 (ExploreFilters reads the query itself)
    filters = ExploreFilters.from_query(request.GET)
    page = explore_page(request.user, filters, request.GET.get("cursor"), size=page_limit(request))
    return JsonResponse({"results": [explore_item_json(row) for row in page.rows], "next": page.next_cursor})


def _visible_or_404(publication_id: uuid.UUID) -> Publication:
    publication = Publication.objects.visible().filter(pk=publication_id).first()
    if publication is None:
        raise BadRequest(error(404, "not_found", _("No such published image.")))
    return publication


@sharing_api(TEAM)
@api_view("GET", page_asset=True)
def explore_file(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponseBase:
    """The original, as the Explore page serves it (without its prompt text when the author
    keeps it; ?download counts a download)."""
    _visible_or_404(publication_id)
    return explore_pages.publication_file(request, publication_id)


@sharing_api(TEAM)
@api_view("GET", page_asset=True)
def explore_thumbnail(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponseBase:
    _visible_or_404(publication_id)
    return explore_pages.publication_thumbnail(request, publication_id)


def _react(
    request: AuthenticatedHttpRequest, publication_id: uuid.UUID, *, verb: Any, field: str, counter: str
) -> JsonResponse:
    """Set or clear the caller's like or favourite: `{field: bool}` in the body, true by default."""
    publication = _visible_or_404(publication_id)
    details: dict = {}
    wanted = _boolean(_optional_object(request), field, True, details)
    _refuse(details)
    try:
        now = verb(request.user, publication, wanted)
    except Publication.DoesNotExist:  # unpublished or hidden since it was read
        return error(404, "not_found", _("No such published image."))
    count = Publication.objects.filter(pk=publication.pk).values_list(counter, flat=True).first() or 0
    return JsonResponse({field: now, counter: count})


@sharing_api(TEAM)
@api_view("POST")
def explore_like(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> JsonResponse:
    return _react(request, publication_id, verb=reactions.like, field="liked", counter="like_count")


@sharing_api(TEAM)
@api_view("POST")
def explore_favourite(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> JsonResponse:
    return _react(request, publication_id, verb=reactions.favourite, field="favourited", counter="favourite_count")


# --- share links --------------------------------------------------------------------------------


def share_link_json(link: ShareLink) -> dict:
    """A link as its owner's list shows it (never its secret: only the hash is stored)."""
    return {
        "id": str(link.pk),
        "title": link.title,
        "show_prompt": link.show_prompt,
        "prefix": link.prefix,
        "image_ids": [str(entry.image_id) for entry in link.entries.all()],
        "created_at": isoformat(link.created_at),
        "expires_at": isoformat(link.expires_at),
        "revoked_at": isoformat(link.revoked_at),
        "active": link.is_active(),
        "view_count": link.view_count,
    }


def _with_entries() -> Prefetch:
    return Prefetch("entries", queryset=SharedImage.objects.order_by("position"))


@sharing_api(PUBLIC)
@api_view("GET", "POST")
def share_links(request: AuthenticatedHttpRequest) -> JsonResponse:
    """GET: the caller's links, newest first, revoked and expired ones too. POST: a new link;
    its `url` carries the secret and is in this answer only."""
    if request.method == "POST":
        return _create_link(request)
    page = list_page(owned(ShareLink, request).prefetch_related(_with_entries()), request)
    return JsonResponse({"results": [share_link_json(link) for link in page.rows], "next": page.next_cursor})


def _create_link(request: AuthenticatedHttpRequest) -> JsonResponse:
    body = json_object(request, example=_('Send a JSON object like {"image_ids": ["…"]}.'))
    details: dict = {}
    wanted = _image_ids(body.get("image_ids"), details)
    title = _title(body, "", details)
    show_prompt = _boolean(body, "show_prompt", True, details)
    expires_in_days = body.get("expires_in_days")
    if expires_in_days is not None and (isinstance(expires_in_days, bool) or expires_in_days not in links.EXPIRY_DAYS):
        allowed = ", ".join(str(days) for days in links.EXPIRY_DAYS)
        details["expires_in_days"] = [_("Use null (never) or one of: %(values)s.") % {"values": allowed}]
    _refuse(details)
    found = {image.pk: image for image in owned(Image, request).filter(pk__in=wanted)}
    if len(found) != len(wanted):
        return error(404, "not_found", _("One of the images does not exist or is not yours."))
    new = links.create_link(
        request.user,
        [found[pk] for pk in wanted],
        title=title,
        show_prompt=show_prompt,
        expires_in_days=expires_in_days,
        request=request,
    )
    fresh = ShareLink.objects.prefetch_related(_with_entries()).get(pk=new.link.pk)
    url = request.build_absolute_uri(reverse("sharing:shared", args=[new.plaintext]))
    response = JsonResponse({**share_link_json(fresh), "url": url}, status=201)
    response["Cache-Control"] = "no-store"  # the secret URL is in this answer only
    return response


def _image_ids(raw: object, details: dict) -> list[uuid.UUID]:
    """The ids asked for, in order, repeats once; [] with a message in `details` if not valid."""
    if not isinstance(raw, list) or not raw:
        details["image_ids"] = [_("Give a list of at least one of your images' ids.")]
        return []
    try:
        wanted = list(dict.fromkeys(uuid.UUID(value) for value in raw if isinstance(value, str)))
        if len(raw) != sum(isinstance(value, str) for value in raw):
            raise ValueError
    except ValueError:
        details["image_ids"] = [_("Each id must be an image id (a UUID string).")]
        return []
    if len(wanted) > ShareLink.MAX_IMAGES:
        details["image_ids"] = [
            ngettext(
                "A share link holds at most %(count)s image. Choose fewer.",
                "A share link holds at most %(count)s images. Choose fewer.",
                ShareLink.MAX_IMAGES,
            )
            % {"count": ShareLink.MAX_IMAGES}
        ]
        return []
    return wanted


@sharing_api(PUBLIC)
@api_view("DELETE")
def share_link_revoke(request: AuthenticatedHttpRequest, link_id: uuid.UUID) -> HttpResponse:
    """Revoke one's own link (204, also when it was revoked already)."""
    link = owned(ShareLink, request).filter(pk=link_id).first()
    if link is None:
        return error(404, "not_found", _("No such share link."))
    links.revoke(link, request=request)
    return HttpResponse(status=204)
