"""Share links: making, listing and revoking one's own (sharing:links, link_create,
link_revoke), and the page and files anyone holding a link may open without an account
(sharing:shared, shared_file, shared_thumbnail). All of them exist only with SHARING=public.

Caching: a revoked or expired link must stop working at once, also where copies are kept. The
page is `no-cache` (kept, but revalidated on every view: a 304 while the link is unchanged, a
404 the moment it is not; every view reaches the server and is counted). Its files may be kept
SHARE_LINK_CACHE_SECONDS (60 by default) and then revalidated: pictures do not change, and that
short while is the longest a copy outlives a revoke. Their ETag carries the link's id, so a copy
fetched through one link is never revalidated as valid through another.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext, ngettext, ngettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.http import AuthenticatedHttpRequest
from generator.limits import Exceeded, count_request
from generator.models import Image
from generator.views.files import serve_image, stripped_original

from .. import links
from ..models import SharedImage, ShareLink
from ..switch import PUBLIC, sharing_required

VISIT_GROUP = "share-link"
# Revoked and expired links stay on their owner's list this long, so they see what stopped.
RECENT_DAYS = 30
LIST_LIMIT = 200


class ShareLinkForm(forms.Form):
    title = forms.CharField(
        label=_("Title"),
        max_length=ShareLink._meta.get_field("title").max_length,
        required=False,
        strip=True,
        help_text=_("Shown on the page and in chat previews. Optional."),
    )
    show_prompt = forms.BooleanField(
        label=_("Show the prompt"),
        required=False,
        initial=True,
        help_text=_("Off: visitors see neither the prompt nor the settings stored in the downloaded files."),
    )
    expires_in = forms.TypedChoiceField(
        label=_("Expires"),
        choices=[
            ("", pgettext_lazy("share link expiry", "Never")),
            *(
                (days, ngettext_lazy("In %(days)s day", "In %(days)s days", "days") % {"days": days})
                for days in links.EXPIRY_DAYS
            ),
        ],
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("After this the link shows nothing, as if revoked."),
    )


# --- the owner's pages -------------------------------------------------------------------------


def _recent_links(request: AuthenticatedHttpRequest) -> QuerySet[ShareLink]:
    """The person's working links, and those revoked or expired in the last RECENT_DAYS."""
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    recent = Q(revoked_at__isnull=True, expires_at__isnull=True) | Q(revoked_at__isnull=True, expires_at__gte=since)
    return (
        ShareLink.objects.filter(recent | Q(revoked_at__gte=since), owner=request.user)
        .annotate(image_count=Count("entries"))
        .order_by("-created_at")
    )


def _get_link_for_user(request: AuthenticatedHttpRequest, link_id: object) -> ShareLink:
    """One of the signed-in person's links; anyone else's is a 404."""
    own = ShareLink.objects.filter(owner=request.user).annotate(image_count=Count("entries"))
    return get_object_or_404(own, pk=link_id)


def _shared_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("sharing:shared", args=[token]))


@sharing_required(PUBLIC)
@never_cache  # the page right after making a link carries its secret URL
@require_GET
def link_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    new = links.take_shown_once(request)
    context = {
        "share_links": _recent_links(request)[:LIST_LIMIT],
        "new_link": new.link if new else None,
        "new_link_url": _shared_url(request, new.plaintext) if new else "",
        "recent_days": RECENT_DAYS,
    }
    return render(request, "sharing/links.html", context)


def _chosen_images(request: AuthenticatedHttpRequest, ids: Iterable[str]) -> list[Image] | None:
    """The person's images named by `ids`, in that order (repeats once); None when there are
    more than a link may hold (not looked up); a 404 when any id is not one of their images."""
    try:
        wanted = list(dict.fromkeys(uuid.UUID(value) for value in ids))
    except ValueError:
        raise Http404 from None
    if len(wanted) > ShareLink.MAX_IMAGES:
        return None
    found = {image.pk: image for image in Image.objects.filter(owner=request.user, pk__in=wanted)}
    if len(found) != len(wanted):
        raise Http404
    return [found[pk] for pk in wanted]


def _images_problem(images: list[Image] | None) -> str:
    if images is None:
        return ngettext(
            "A share link holds at most %(count)s image. Choose fewer.",
            "A share link holds at most %(count)s images. Choose fewer.",
            ShareLink.MAX_IMAGES,
        ) % {"count": ShareLink.MAX_IMAGES}
    if not images:
        return gettext("Choose at least one of your images to share.")
    return ""


@sharing_required(PUBLIC)
@never_cache
@require_http_methods(["GET", "POST"])
def link_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """GET ?image=<id>&image=<id>…: the form for those images (all the person's own: any
    other id is a 404). POST makes the link; its URL is shown once on the list page (PRG, so a
    reload never makes a second link)."""
    source: QueryDict = request.POST if request.method == "POST" else request.GET
    images = _chosen_images(request, source.getlist("image"))
    problem = _images_problem(images)
    form = ShareLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and not problem and form.is_valid():
        assert images is not None  # no problem: the images were looked up
        new = links.create_link(
            request.user,
            images,
            title=form.cleaned_data["title"],
            show_prompt=form.cleaned_data["show_prompt"],
            expires_in_days=form.cleaned_data["expires_in"],
            request=request,
        )
        links.show_once(request, new)
        return redirect(reverse("sharing:links") + "#new-link")
    status = 400 if problem or form.is_bound else 200
    context = {"form": form, "images": images or [], "problem": problem}
    return render(request, "sharing/link_create.html", context, status=status)


@sharing_required(PUBLIC)
@require_POST
def link_revoke(request: AuthenticatedHttpRequest, link_id: str) -> HttpResponse:
    link = _get_link_for_user(request, link_id)
    links.revoke(link, request=request)
    if request.htmx:
        return render(request, "sharing/_link_row.html", {"link": link})
    title = link.title or link.prefix + "…"
    messages.success(request, gettext("Revoked the share link “%(title)s”. It now shows nothing.") % {"title": title})
    return redirect("sharing:links")


# --- what anyone holding a link sees -----------------------------------------------------------


def _share_link_rate(group: str, request: HttpRequest) -> str:
    return settings.SHARE_LINK_RATE


def _visiting_too_often(seconds: int) -> str:
    return ngettext(
        "Too many requests from your network address. Try again in %(seconds)s second.",
        "Too many requests from your network address. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def _too_many(exceeded: Exceeded) -> HttpResponse:
    response = HttpResponse(exceeded.message, content_type="text/plain; charset=utf-8", status=429)
    response["Retry-After"] = str(exceeded.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def _private_to_the_link(response: HttpResponseBase) -> HttpResponseBase:
    """The secret is in the URL: never sent on as a Referer, never indexed."""
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _visit(request: HttpRequest, token: str) -> ShareLink | HttpResponse:
    """Count the visit per client address (unknown tokens too), then the working link; a 429
    over SHARE_LINK_RATE, a 404 for no such working link."""
    exceeded = count_request(request, group=VISIT_GROUP, key="ip", rate=_share_link_rate, message=_visiting_too_often)
    if exceeded is not None:
        return _too_many(exceeded)
    link = links.find_active(token)
    if link is None:
        raise Http404
    return link


def _page_etag(link: ShareLink, shown: list[SharedImage]) -> str:
    state = [str(link.pk), str(link.title), str(link.show_prompt), str(link.expires_at), get_language() or ""]
    state += [f"{entry.position}:{entry.image_id}" for entry in shown]
    return '"' + hashlib.sha256("|".join(state).encode()).hexdigest()[:32] + '"'


@login_not_required
@sharing_required(PUBLIC)
@require_safe
def shared_page(request: HttpRequest, token: str) -> HttpResponseBase:
    visit = _visit(request, token)
    if isinstance(visit, HttpResponse):
        return visit
    link = visit
    shown = links.entries(link)
    if not shown:  # every image was deleted since
        raise Http404
    link.count_view()
    etag = _page_etag(link, shown)
    response: HttpResponseBase
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        response = render(request, "sharing/shared.html", _page_context(request, token, link, shown))
    response["ETag"] = etag
    response["Cache-Control"] = "public, no-cache"
    return _private_to_the_link(response)


def _page_context(request: HttpRequest, token: str, link: ShareLink, shown: list[SharedImage]) -> dict:
    items: list[dict[str, Any]] = [
        {
            "image": entry.image,
            "prompt": entry.image.task.prompt if link.show_prompt else "",
            "file_url": reverse("sharing:shared_file", args=[token, entry.position]),
            "thumbnail_url": reverse("sharing:shared_thumbnail", args=[token, entry.position]),
        }
        for entry in shown
    ]
    default_title = ngettext("A shared image", "%(count)s shared images", len(items)) % {"count": len(items)}
    return {
        "link": link,
        "items": items,
        "title": link.title or default_title,
        "page_url": request.build_absolute_uri(),
        "preview_url": request.build_absolute_uri(items[0]["file_url"]),
        "description": items[0]["prompt"],
    }


# Pictures do not change: a short while, then asked again (see the module's docstring).
def _file_cache() -> str:
    return f"public, max-age={settings.SHARE_LINK_CACHE_SECONDS}, must-revalidate"


@login_not_required
@sharing_required(PUBLIC)
@require_safe
def shared_file(request: HttpRequest, token: str, position: int) -> HttpResponseBase:
    """The original (?download=1: as an attachment). Counted like a page view: originals are
    the heavy part. When the link hides the prompt, always without the text it carries."""
    visit = _visit(request, token)
    if isinstance(visit, HttpResponse):
        return visit
    entry = links.entry_at(visit, position) or _not_found()
    if not visit.show_prompt:
        return _private_to_the_link(_bare_original(request, visit, entry.image))
    response = serve_image(request, entry.image, thumbnail=False, cache_control=_file_cache(), etag_key=str(visit.pk))
    return _private_to_the_link(response)


@login_not_required
@sharing_required(PUBLIC)
@require_safe
def shared_thumbnail(request: HttpRequest, token: str, position: int) -> HttpResponseBase:
    """A thumbnail (no text in it). Not counted against the rate: an album's page shows up to
    a hundred at once."""
    link = links.find_active(token) or _not_found()
    entry = links.entry_at(link, position) or _not_found()
    response = serve_image(request, entry.image, thumbnail=True, cache_control=_file_cache(), etag_key=str(link.pk))
    return _private_to_the_link(response)


def _not_found() -> NoReturn:
    raise Http404


def _bare_original(request: HttpRequest, link: ShareLink, image: Image) -> HttpResponseBase:
    """The original without its prompt and settings, whatever the query asks (the link's
    owner chose not to show them)."""
    etag = f'"{image.pk}-o-{link.pk}-bare"'
    response: HttpResponseBase
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        stripped = stripped_original(image, download="download" in request.GET, cache_control=_file_cache())
        if stripped is None:
            raise Http404
        response = stripped
    response["ETag"] = etag
    response["Cache-Control"] = _file_cache()
    return response
