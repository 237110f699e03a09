"""One image (page, and a modal from the grid), its favourite flag and tags; the tag page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from .. import services
from ..models import Image, Tag
from ..ownership import get_owned_or_404, owned
from ..tags import rename_tag, tag_for
from .http import AuthenticatedHttpRequest, safe_next

MODAL_TARGET = "image-modal"
SUGGESTIONS = 20


# --- one image ----------------------------------------------------------------------------


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
        response = render(request, "generator/_image_favorite.html", {"image": image, "next": _next_url(request, image)})
        # The grid behind the modal may show a star: it can listen for this.
        return trigger_client_event(response, "atelier:image-favorite", {"id": str(image.pk), "favorite": image.is_favorite})
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
    return get_object_or_404(owned(Image, request).select_related("task").prefetch_related(_tags_prefetch()), pk=image_id)


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
        **extra,
    }
    if in_modal:
        template = "generator/_image_delete_confirm.html" if extra.get("confirm_delete") else "generator/_image_panel.html"
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
    """The create page filled in with this image's settings, its seed kept."""
    task = image.task
    values = {
        "prompt": task.prompt,
        "negative_prompt": task.negative_prompt,
        "model": f"{task.provider}:{task.model}",
        "size": f"{task.width}x{task.height}",
        "num_images": task.num_images,
        "seed": image.seed if image.seed is not None else task.seed,
        "steps": task.steps,
        "scale": task.guidance_scale,
    }
    query = urlencode({key: value for key, value in values.items() if value not in (None, "")})
    return f"{reverse('generator:create')}?{query}"


def _vary_fields(image: Image) -> list[tuple[str, object]]:
    """Hidden fields for "Vary": the same settings through the create form, a new random seed.

    Width and height rather than `size`: the size field only takes its presets, and the form
    accepts any width and height the model allows.
    """
    task = image.task
    fields = [
        ("prompt", task.prompt),
        ("negative_prompt", task.negative_prompt),
        ("model", f"{task.provider}:{task.model}"),
        ("width", task.width),
        ("height", task.height),
        ("num_images", task.num_images),
        ("steps", task.steps),
        ("scale", task.guidance_scale),
        ("random_seed", "on"),
    ]
    return [(name, value) for name, value in fields if value not in (None, "")]


# --- tags ---------------------------------------------------------------------------------


def _tags_with_counts(request: HttpRequest) -> QuerySet[Tag]:
    return owned(Tag, request).annotate(image_count=Count("images")).order_by(Lower("name"))


@require_GET
def tag_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _render_tag_list(request)


def _render_tag_list(request: AuthenticatedHttpRequest, status: int = 200, **extra) -> HttpResponse:
    return render(request, "generator/tags.html", {"tags": _tags_with_counts(request), **extra}, status=status)


@require_GET
def tag_suggest(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The person's own tags matching `q` (or the add form's `name`), most used first."""
    query = (request.GET.get("q") or request.GET.get("name") or "").strip()[:50]
    tags = _tags_with_counts(request).order_by("-image_count", Lower("name"))
    if query:
        tags = tags.filter(name__icontains=query)
    names = [tag.name for tag in tags[:SUGGESTIONS]]
    if request.htmx:
        list_id = request.GET.get("list", "tag-suggestions")
        list_id = list_id if list_id.replace("-", "").isalnum() else "tag-suggestions"
        return render(request, "generator/_tag_suggestions.html", {"names": names, "list_id": list_id})
    return JsonResponse(names, safe=False, json_dumps_params={"ensure_ascii": False})


@require_POST
def tag_rename(request: AuthenticatedHttpRequest, tag_id: int) -> HttpResponse:
    tag = get_owned_or_404(Tag, request, tag_id)
    old_name, raw_name = tag.name, request.POST.get("name", "")
    try:
        with transaction.atomic():
            rename_tag(tag, raw_name)
    except (ValidationError, IntegrityError) as error:
        message = error.messages[0] if isinstance(error, ValidationError) else _("You already have a tag with that name.")
        tag.name = old_name
        return _render_tag_list(request, status=400, rename_error=message, rename_tag_id=tag.pk, rename_value=raw_name)
    if tag.name != old_name:
        messages.success(request, _("Renamed “%(old)s” to “%(new)s”.") % {"old": old_name, "new": tag.name})
    return redirect("generator:tag_list")


@require_POST
def tag_delete(request: AuthenticatedHttpRequest, tag_id: int) -> HttpResponse:
    tag = get_owned_or_404(Tag, request, tag_id)
    count = tag.images.count()
    tag.delete()  # only the tag and its links go; the images stay
    if count:
        text = ngettext(
            "Deleted the tag “%(name)s”. Its %(count)s image was kept.",
            "Deleted the tag “%(name)s”. Its %(count)s images were kept.",
            count,
        ) % {"name": tag.name, "count": count}
    else:
        text = _("Deleted the tag “%(name)s”.") % {"name": tag.name}
    messages.success(request, text)
    return redirect("generator:tag_list")

