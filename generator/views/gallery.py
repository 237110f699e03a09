"""The gallery: a person's images, newest first, with filters, bulk actions and zip download."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AuthenticatedHttpRequest
from sharing import publishing
from sharing.models import ShareLink
from sharing.switch import PUBLIC, TEAM, allows

from .. import services
from ..lib.keyset import cut_page
from ..lib.zipstream import ZipMember, stream_zip
from ..models import Image, Tag
from ..ownership import owned
from ..tags import clean_tag_name, find_tag, tag_for
from .gallery_filters import FILTER_KEYS, GalleryFilters

OFFLINE_PROVIDER = "offline"
PAGE_SIZE = 48
# The first tiles of the first page load at once (they are on the first screen); the others
# when they come near it (static/js/gallery.js).
EAGER_THUMBNAILS = 12
MAX_SELECTION = 500
# What a grid tile shows (_gallery_tile.html) and the keyset cursor reads, as plain rows: a
# page loads 48 images, and making model instances of them cost a tenth of the page.
GRID_FIELDS = (
    "id",
    "owner_id",
    "created_at",
    "width",
    "height",
    "is_favorite",
    "task__prompt",
    "task__provider",
    # The author's own published mark and like count (one LEFT JOIN, no query per tile).
    "publication__id",
    "publication__like_count",
    "publication__hidden_at",
)


def grid_rows(images: QuerySet[Image]) -> QuerySet[Image, dict[str, Any]]:
    """The images as the grid's rows: dicts of GRID_FIELDS ({% gallery_tiles %} renders them)."""
    return images.values(*GRID_FIELDS)


@require_GET
def gallery(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = GalleryFilters.from_query(request.GET)
    tag = find_tag(request.user, filters.tag) if filters.tag else None
    if filters.tag and tag is None:
        filters.problems.append(_("You have no tag called “%(name)s”, so no image matches.") % {"name": filters.tag})
    images = filters.apply(owned(Image, request), tag)
    page = cut_page(grid_rows(images), request.GET.get("after"), PAGE_SIZE)
    context = {
        "page": page,
        "filters": filters,
        "next_query": filters.querystring(after=page.next_cursor or ""),
        "eager_count": EAGER_THUMBNAILS if page.is_first else 0,
        "has_sketch": any(row["task__provider"] == OFFLINE_PROVIDER for row in page.rows),
    }
    if request.htmx:
        return render(request, "generator/_gallery_items.html", context)
    # One COUNT for the whole page (not per scrolled page): the total above the grid.
    total = _total(images, filters, tag) if page.rows else 0
    has_any = total > 0 or owned(Image, request).exists()
    return render(
        request,
        "generator/gallery.html",
        {**context, **services.gallery_choices(request.user), "has_any": has_any, "total": total},
    )


def _total(images: QuerySet[Image], filters: GalleryFilters, tag: Tag | None) -> int:
    """How many images the filters match: one COUNT over the owner's index, without the join.
    A tag alone counts its links (a tag is only ever on its owner's images: tags.tag_for, the
    admin), not the owner's images one by one: 0.02 ms against 12 at 20,000 images."""
    if tag is not None and filters.as_params().keys() == {"tag"}:
        return Image.tags.through.objects.filter(tag=tag).count()
    return images.order_by().count()


# --- selection: every id must be the person's, or nothing happens -------------------------


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _selection(request: AuthenticatedHttpRequest) -> QuerySet[Image]:
    """The person's images named by the POSTed "image" ids; refused whole if any is not theirs."""
    raw = request.POST.getlist("image")
    if len(raw) > MAX_SELECTION:
        raise Refused(400, _("Select at most %(max)s images at a time. Nothing was changed.") % {"max": MAX_SELECTION})
    try:
        ids = {uuid.UUID(value) for value in raw}
    except (ValueError, AttributeError):
        raise Refused(
            400, _("The selection contains something that is not an image id. Nothing was changed.")
        ) from None
    selection = owned(Image, request).filter(pk__in=ids)
    missing = len(ids) - selection.count()
    if missing:
        message = ngettext(
            "%(count)s of the selected images is not in your gallery (perhaps deleted meanwhile). Nothing was changed.",
            "%(count)s of the selected images are not in your gallery (perhaps deleted meanwhile). Nothing was changed.",
            missing,
        )
        raise Refused(404, message % {"count": missing})
    return selection


def _refused(request: AuthenticatedHttpRequest, refusal: Refused) -> HttpResponse:
    if request.htmx:  # htmx 2 swaps no 4xx: the message goes to the toolbar with a 200
        return _answer(request, refusal.message, level=messages.ERROR)
    context = {"message": refusal.message, "back": _back_url(request)}
    return render(request, "generator/_gallery_refused.html", context, status=refusal.status)


def _back_url(request: AuthenticatedHttpRequest) -> str:
    """The gallery with the filters the form came from (only known filter keys: no open redirect)."""
    sent = QueryDict(request.POST.get("filters", "")[:2000])
    query = QueryDict(mutable=True)
    query.update({key: sent[key] for key in FILTER_KEYS if sent.get(key)})
    url = reverse("generator:gallery")
    return f"{url}?{query.urlencode()}" if query else url


def _count(n: int) -> str:
    return ngettext("%(count)s image", "%(count)s images", n) % {"count": n}


# --- bulk actions --------------------------------------------------------------------------


def _add_tag(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    tag = tag_for(request.user, request.POST.get("tag", ""))
    through = Image.tags.through
    ids = list(selection.values_list("pk", flat=True))
    through.objects.bulk_create([through(image_id=pk, tag_id=tag.pk) for pk in ids], ignore_conflicts=True)
    count = len(ids)
    return ngettext("Tagged %(count)s image “%(tag)s”.", "Tagged %(count)s images “%(tag)s”.", count) % {
        "count": count,
        "tag": tag.name,
    }


def _remove_tag(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    name = clean_tag_name(request.POST.get("tag", ""))
    tag = find_tag(request.user, name)
    if tag is None:
        raise ValidationError(_("You have no tag called “%(name)s”.") % {"name": name})
    removed = Image.tags.through.objects.filter(tag=tag, image__in=selection).delete()[0]
    return ngettext("Removed “%(tag)s” from %(count)s image.", "Removed “%(tag)s” from %(count)s images.", removed) % {
        "count": removed,
        "tag": tag.name,
    }


def _favorite(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    count = selection.update(is_favorite=True)
    return ngettext(
        "Added %(count)s image to your favourites.", "Added %(count)s images to your favourites.", count
    ) % {"count": count}


def _unfavorite(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    count = selection.update(is_favorite=False)
    return ngettext(
        "Removed %(count)s image from your favourites.", "Removed %(count)s images from your favourites.", count
    ) % {"count": count}


def _delete(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    count = services.delete_images(selection)
    return ngettext("Deleted %(count)s image.", "Deleted %(count)s images.", count) % {"count": count}


def _publish(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> str:
    if not allows(TEAM):
        raise ValidationError(_("Publishing is turned off on this site."))
    count = publishing.publish_new(selection, request=request)
    return ngettext("%(count)s image is published on Explore.", "%(count)s images are published on Explore.", count) % {
        "count": count
    }


ACTIONS: dict[str, Callable[[AuthenticatedHttpRequest, QuerySet[Image]], str]] = {
    "tag": _add_tag,
    "untag": _remove_tag,
    "favorite": _favorite,
    "unfavorite": _unfavorite,
    "delete": _delete,
    "publish": _publish,
}


@require_POST
def bulk(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    action = request.POST.get("action", "")
    if action == "download":  # the toolbar's zip button without formaction support
        return download(request)
    if action == "share" and allows(PUBLIC):  # the share link page takes the ids (sharing.views.links)
        return _share_link(request)
    if action not in ACTIONS:
        return _refused(request, Refused(400, _("Choose what to do with the selected images. Nothing was changed.")))
    if not request.POST.getlist("image"):
        return _answer(request, _("Select at least one image first."), level=messages.WARNING)
    try:
        selection = _selection(request)
        if action == "delete" and request.POST.get("confirm") != "yes":
            return _confirm_delete(request, selection)
        ids = list(selection.values_list("pk", flat=True))
        with transaction.atomic():
            done = ACTIONS[action](request, selection)
    except Refused as refusal:
        return _refused(request, refusal)
    except ValidationError as error:
        # Translators: %(problem)s is why a bulk action was refused, a whole sentence.
        problem = _("%(problem)s Nothing was changed.") % {"problem": " ".join(error.messages)}
        return _answer(request, problem, level=messages.ERROR)
    return _answer(request, done, action=action, ids=ids)


def _share_link(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The share link form for the selected images: only the person's own, at most an album."""
    if not request.POST.getlist("image"):
        return _answer(request, _("Select at least one image first."), level=messages.WARNING)
    if len(request.POST.getlist("image")) > ShareLink.MAX_IMAGES:
        message = _("A share link holds at most %(max)s images. Nothing was changed.") % {"max": ShareLink.MAX_IMAGES}
        return _refused(request, Refused(400, message))
    try:
        ids = list(_selection(request).order_by("-created_at", "-id").values_list("pk", flat=True))
    except Refused as refusal:
        return _refused(request, refusal)
    url = f"{reverse('sharing:link_create')}?{urlencode([('image', str(pk)) for pk in ids])}"
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _answer(
    request: AuthenticatedHttpRequest,
    message: str,
    *,
    level: int = messages.SUCCESS,
    action: str = "",
    ids: list[uuid.UUID] | None = None,
) -> HttpResponse:
    """Without JavaScript: the message and back to the gallery. With htmx: the message for the
    toolbar, the tiles the action changed and the new total, so that the grid, the selection and
    the scroll position stay as they are."""
    if not request.htmx:
        messages.add_message(request, level, message)
        return redirect(_back_url(request))
    context: dict[str, object] = {"message": message, "error": level >= messages.WARNING, "changed": [], "deleted": []}
    if action in ("favorite", "unfavorite", "publish"):
        changed = grid_rows(owned(Image, request).filter(pk__in=ids or []))
        context["changed"] = list(changed.order_by("-created_at", "-id"))
    elif action == "delete":
        filters = GalleryFilters.from_query(QueryDict(request.POST.get("filters", "")[:2000]))
        tag = find_tag(request.user, filters.tag) if filters.tag else None
        context.update(
            deleted=ids or [], filters=filters, total=_total(filters.apply(owned(Image, request), tag), filters, tag)
        )
    return render(request, "generator/_gallery_bulk_done.html", context)


def _confirm_delete(request: AuthenticatedHttpRequest, selection: QuerySet[Image]) -> HttpResponse:
    images = list(selection.select_related("task").order_by("-created_at", "-id"))
    context = {
        "images": images,
        "count": _count(len(images)),
        "filters": request.POST.get("filters", ""),
        "back": _back_url(request),
    }
    return render(request, "generator/_gallery_confirm_delete.html", context)


# --- zip download --------------------------------------------------------------------------


@require_POST
def download(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    if not request.POST.getlist("image"):
        messages.warning(request, _("Select at least one image to download."))
        return redirect(_back_url(request))
    try:
        selection = _selection(request)
    except Refused as refusal:
        return _refused(request, refusal)
    images = list(selection.select_related("task").prefetch_related("tags").order_by("-created_at", "-id"))
    response = StreamingHttpResponse(_zip_of(images), content_type="application/zip")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="atelier-{len(images)}-images-{stamp}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


def zip_name(image: Image) -> str:
    return f"atelier-{image.pk}.png"


def _zip_of(images: list[Image]) -> Iterator[bytes]:
    """The originals as stored (their PNG parameters chunks intact), then manifest.json."""
    missing: set[uuid.UUID] = set()
    # The zip is streamed after the view returns: take the words now, in the request's language.
    missing_note = _("The stored file could not be read, so it is not in this zip.")
    members = [
        ZipMember(
            name=zip_name(image),
            modified=timezone.localtime(image.created_at),
            open=partial(default_storage.open, image.file.name, "rb"),
            size=image.bytes,
        )
        for image in images
    ]
    by_name = {zip_name(image): image for image in images}

    def skip(member: ZipMember, error: OSError) -> None:
        missing.add(by_name[member.name].pk)

    def manifest() -> bytes:
        entries = [_manifest_entry(image, missing_note if image.pk in missing else "") for image in images]
        return json.dumps({"images": entries}, ensure_ascii=False, indent=2).encode()

    def with_manifest() -> Iterator[ZipMember]:
        yield from members
        yield ZipMember("manifest.json", timezone.localtime(), lambda: io.BytesIO(manifest()))

    return stream_zip(with_manifest(), on_error=skip)


def _manifest_entry(image: Image, missing: str) -> dict:
    """One image's manifest entry; `missing` says why its file is not in the zip, if it is not."""
    settings_used = {name: value for name, value in image.task.parameters().items() if name != "num_images"}
    entry = {
        "image_id": str(image.pk),
        "task_id": str(image.task_id),
        "file": None if missing else zip_name(image),
        **settings_used,
        # The picture's own size and seed: a random-seed task's images each have their own.
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "created_at": image.created_at.isoformat(),
        "tags": sorted(tag.name for tag in image.tags.all()),
        "favourite": image.is_favorite,
    }
    if missing:
        entry["missing"] = missing
    return entry
