"""Explore: everyone's published images, their likes, favourites, views and downloads.

Only visible publications (published, not hidden) are ever shown or served here: anything
else is a 404, the same as an id that never existed.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.http import AuthenticatedHttpRequest
from generator.views.files import serve_image, stripped_original

from .. import reactions
from ..explore import SORTS, ExploreFilters, cut, for_viewer, model_choices, reacting, tile_page, tile_row
from ..models import Favourite, Like, Publication
from ..switch import TEAM, sharing_required

# Published files are revalidated often: an image unpublished or hidden stops showing soon.
PUBLISHED_CACHE = "private, max-age=60, must-revalidate"
EAGER_THUMBNAILS = 12


def _visible_or_404(publication_id: uuid.UUID) -> Publication:
    # Its callers read the image only: every Explore thumbnail comes through here.
    found = Publication.objects.visible().select_related("image").filter(pk=publication_id).first()
    if found is None:
        raise Http404
    return found


@sharing_required(TEAM)
@require_GET
def explore(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = ExploreFilters.from_query(request.GET)
    page = tile_page(request.user, filters, request.GET.get("after"))
    context: dict[str, Any] = {
        "page": page,
        "filters": filters,
        "next_query": filters.querystring(after=page.next_cursor or ""),
        "more_url": reverse("sharing:explore"),
        "eager_count": EAGER_THUMBNAILS if page.is_first else 0,
        "reacting": reacting(request),
    }
    if request.htmx:
        return render(request, "sharing/_explore_items.html", context)
    context.update(
        model_choices=model_choices(),
        sorts=[(name, label, filters.querystring(sort=name)) for name, (label, _fields) in SORTS.items()],
    )
    return render(request, "sharing/explore.html", context)


@sharing_required(TEAM)
@require_GET
def publication_detail(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponse:
    try:
        reactions.record_view(request.user, Publication(pk=publication_id))
    except Publication.DoesNotExist:  # never published, unpublished or hidden
        raise Http404 from None
    visible = Publication.objects.visible().select_related("image__task")
    publication = for_viewer(visible, request.user).filter(pk=publication_id).first()
    if publication is None:
        raise Http404
    task = publication.image.task
    context = {"publication": publication, "task": task, "reacting": reacting(request)}
    return render(request, "sharing/publication.html", context)


def _react(request: AuthenticatedHttpRequest, publication_id: uuid.UUID, *, verb: Any, template: str) -> HttpResponse:
    # The verb finds the publication only while it is visible (DoesNotExist otherwise).
    publication = Publication(pk=publication_id)
    wanted = {"1": True, "0": False}.get(request.POST.get("wanted", ""))
    try:
        verb(request.user, publication, wanted)
    except Publication.DoesNotExist:
        raise Http404 from None
    if not request.htmx:
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
            back = reverse("sharing:publication", args=[publication.pk])
        return redirect(back)
    fresh = for_viewer(Publication.objects.filter(pk=publication.pk), request.user).first()
    if fresh is None:
        raise Http404
    return render(
        request, template, {"publication": fresh, "reacting": reacting(request, request.POST.get("next", ""))}
    )


@sharing_required(TEAM)
@require_POST
def toggle_like(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponse:
    return _react(request, publication_id, verb=reactions.like, template="sharing/_like_button.html")


@sharing_required(TEAM)
@require_POST
def toggle_favourite(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponse:
    return _react(request, publication_id, verb=reactions.favourite, template="sharing/_favourite_button.html")


@sharing_required(TEAM)
@require_GET
def publication_file(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponseBase:
    publication = _visible_or_404(publication_id)
    downloading = "download" in request.GET
    if publication.show_prompt:
        response = serve_image(request, publication.image, thumbnail=False, cache_control=PUBLISHED_CACHE)
    else:
        response = _without_prompt(publication, download=downloading)
    if downloading and response.status_code in (200, 302):  # not a 304, not a missing file
        try:
            reactions.record_download(publication)
        except Publication.DoesNotExist:
            raise Http404 from None
    return response


def _without_prompt(publication: Publication, *, download: bool) -> HttpResponseBase:
    """The original without the prompt and settings its PNG carries: the author kept them."""
    response = stripped_original(publication.image, download=download, cache_control=PUBLISHED_CACHE)
    if response is None:
        raise Http404
    return response


@sharing_required(TEAM)
@require_GET
def publication_thumbnail(request: AuthenticatedHttpRequest, publication_id: uuid.UUID) -> HttpResponseBase:
    publication = _visible_or_404(publication_id)
    return serve_image(request, publication.image, thumbnail=True, cache_control=PUBLISHED_CACHE)


def _mine(
    request: AuthenticatedHttpRequest, model: type[Like] | type[Favourite], *, kind: str, title: str
) -> HttpResponse:
    """The viewer's likes or favourites of visible publications, newest first."""
    rows: QuerySet[Any] = (
        model._default_manager.filter(user_id=request.user.pk, publication__hidden_at__isnull=True)
        .select_related("publication__owner", "publication__image")
        .annotate(
            viewer_likes=Exists(Like.objects.filter(publication=OuterRef("publication"), user_id=request.user.pk)),
            viewer_favourites=Exists(
                Favourite.objects.filter(publication=OuterRef("publication"), user_id=request.user.pk)
            ),
        )
    )
    page = cut(rows, ("created_at", "id"), request.GET.get("after"), kind=f"mine-{kind}")
    for row in page.rows:
        row.publication.viewer_likes, row.publication.viewer_favourites = row.viewer_likes, row.viewer_favourites
    page.rows = [tile_row(row.publication) for row in page.rows]
    url = reverse(f"sharing:{kind}")
    context = {
        "page": page,
        "next_query": f"after={page.next_cursor}" if page.next_cursor else "",
        "more_url": url,
        "eager_count": EAGER_THUMBNAILS if page.is_first else 0,
        "title": title,
        "kind": kind,
        "reacting": reacting(request),
    }
    if request.htmx:
        return render(request, "sharing/_explore_items.html", context)
    return render(request, "sharing/mine.html", context)


@sharing_required(TEAM)
@require_GET
def liked(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _mine(request, Like, kind="liked", title=_("Liked"))


@sharing_required(TEAM)
@require_GET
def favourites(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _mine(request, Favourite, kind="favourites", title=_("Favourites"))
