"""One image (its page, and a modal from the grid): favourite, tags, reuse, vary and delete."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from accounts.http import AuthenticatedHttpRequest
from sharing.publishing import PublishForm, publication_of

from .. import services
from ..forms import fields_for
from ..models import Image, Tag
from ..ownership import get_owned_or_404, owned
from ..tags import tag_for
from .http import safe_next

MODAL_TARGET = "image-modal"


@require_GET
def image_detail(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    return _render_image(request, image)


@require_POST
def image_favorite(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    # The form says which state it wants, so a double submit or a second tab cannot flip it back.
    wanted = request.POST.get("favorite")
    image.is_favorite = wanted == "1" if wanted in ("0", "1") else not image.is_favorite
    Image.objects.filter(pk=image.pk).update(is_favorite=image.is_favorite)
    if request.htmx:
        response = render(
            request, "generator/_image_favorite.html", {"image": image, "next": _next_url(request, image)}
        )
        # The grid behind the modal may show a star: it can listen for this.
        return trigger_client_event(
            response, "atelier:image-favorite", {"id": str(image.pk), "favorite": image.is_favorite}
        )
    return redirect(_next_url(request, image))


@require_POST
def image_tag_add(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    raw_name = request.POST.get("name", "")
    try:
        tag = tag_for(request.user, raw_name)
    except ValidationError as error:
        context = {"tag_error": error.messages[0], "tag_value": raw_name}
        if request.htmx:  # htmx 2 swaps only 2xx: the message goes in place with a 200
            return _render_tags(request, image, **context)
        return _render_image(request, image, status=400, **context)
    image.tags.add(tag)
    if request.htmx:
        return _render_tags(request, image, tag_added=tag.name)
    return redirect(_next_url(request, image))


@require_POST
def image_tag_remove(request: AuthenticatedHttpRequest, image_id: str, tag_id: int) -> HttpResponse:
    image = _get_image(request, image_id)
    tag = get_owned_or_404(Tag, request, tag_id)
    image.tags.remove(tag)  # the tag itself stays; the tag page deletes tags
    if request.htmx:
        return _render_tags(request, image, tag_removed=tag.name)
    return redirect(_next_url(request, image))


@require_http_methods(["GET", "POST"])
def image_delete(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    if request.method == "GET":
        return _render_image(request, image, confirm_delete=True)
    services.delete_images(owned(Image, request).filter(pk=image.pk))
    if request.htmx:
        # The page's script closes the modal and takes the image out of the grid.
        response = HttpResponse(status=200)
        return trigger_client_event(response, "atelier:image-deleted", {"id": str(image.pk)})
    messages.success(request, _("The image was deleted."))
    return redirect("generator:gallery")


def _get_image(request: AuthenticatedHttpRequest, image_id: str) -> Image:
    return get_object_or_404(
        owned(Image, request)
        .select_related("task", "publication", "task__from_publication__owner")
        .prefetch_related(_tags_prefetch()),
        pk=image_id,
    )


def _tags_prefetch() -> Prefetch:
    return Prefetch("tags", queryset=Tag.objects.order_by(Lower("name")))


def _render_image(request: AuthenticatedHttpRequest, image: Image, status: int = 200, **extra) -> HttpResponse:
    in_modal = bool(request.htmx) and request.htmx.target == MODAL_TARGET
    context = {
        "image": image,
        "image_tags": image.tags.all(),
        "task": image.task,
        "in_modal": in_modal,
        "reuse_url": _reuse_url(image),
        "vary_fields": _vary_fields(image),
        "next": image_url(image),
        "publication": publication_of(image),
        "publish_form": PublishForm.for_image(image),
        **extra,
    }
    if in_modal:
        template = (
            "generator/_image_delete_confirm.html" if extra.get("confirm_delete") else "generator/_image_panel.html"
        )
        return render(request, template, context, status=status)
    return render(request, "generator/image_detail.html", context, status=status)


def _render_tags(request: AuthenticatedHttpRequest, image: Image, **extra) -> HttpResponse:
    tags = image.tags.order_by(Lower("name"))
    context = {"image": image, "image_tags": tags, "next": _next_url(request, image), **extra}
    return render(request, "generator/_image_tags.html", context)


def image_url(image: Image) -> str:
    return reverse("generator:image_detail", args=[image.pk])


def _next_url(request: HttpRequest, image: Image) -> str:
    """Where a form without JavaScript returns to: its `next` when it is ours, else the image."""
    return safe_next(request, image_url(image))


def _reuse_url(image: Image) -> str:
    """The create page filled in with this image's settings. It names the image, not the
    prompt: a prompt in the address would reach access logs."""
    return f"{reverse('generator:create')}?{urlencode({'reuse': image.pk})}"


def _vary_fields(image: Image) -> list[tuple[str, object]]:
    """Hidden fields for "Vary": the same settings through the create form, a new random seed.

    Width and height rather than `size`: the size field only takes its presets, and the form
    accepts any width and height the model allows.
    """
    return list(fields_for(image.task, seed=None, random_seed="on").items())
