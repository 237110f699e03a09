"""Publishing and unpublishing one's own images (the viewer's publish panel, the task page's
"Publish all"), and "Use these settings" from Explore.

Another person's image or task is a 404 and nothing changes (generator.ownership). In the
viewer the panel is swapped in place (htmx); without JavaScript the forms post and come back.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from generator.models import Image, Task
from generator.ownership import get_owned_or_404, owned
from generator.views.http import safe_next

from .. import publishing
from ..models import Publication
from ..switch import TEAM, sharing_required

PANEL = "sharing/_publish_panel.html"


@sharing_required(TEAM)
@require_http_methods(["GET", "POST"])
def publish_image(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    if request.method == "GET":
        return _render_panel(request, image, publishing.PublishForm.for_image(image))
    form = publishing.PublishForm(request.POST)
    if not form.is_valid():
        # htmx 2 swaps only 2xx: the form comes back in place with its error and a 200.
        return _render_panel(request, image, form, status=200 if request.htmx else 400)
    was_published = publishing.publication_of(image) is not None
    publishing.publish(image, **form.cleaned_data, request=request)
    done = _("The changes are saved.") if was_published else _("Published: everyone signed in can see it on Explore.")
    return _answer(request, image, done)


@sharing_required(TEAM)
@require_POST
def unpublish_image(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    image = _get_image(request, image_id)
    publishing.unpublish(image, request=request)
    return _answer(request, image, _("Unpublished: it is no longer on Explore."))


@sharing_required(TEAM)
@require_http_methods(["GET", "POST"])
def publish_task(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    prefetch_related_objects([task], "images")
    if request.method == "GET":
        return _render_task_form(request, task, publishing.PublishForm())
    form = publishing.PublishForm(request.POST)
    if not task.ordered_images:
        form.add_error(None, _("This task has no images to publish."))
    if not form.is_valid():
        return _render_task_form(request, task, form, status=400)
    published = publishing.publish_task(task, **form.cleaned_data, request=request)
    count = len(published)
    messages.success(
        request,
        ngettext("Published %(count)s image on Explore.", "Published %(count)s images on Explore.", count)
        % {"count": count},
    )
    return redirect(safe_next(request, task.get_absolute_url()))


@sharing_required(TEAM)
@require_GET
def use_settings(request: AuthenticatedHttpRequest, publication_id: str) -> HttpResponse:
    """The create page filled with a published image's settings. A hidden or unpublished
    image is a 404; one whose author keeps the prompt private says so on its Explore page."""
    publication = get_object_or_404(Publication.objects.visible(), pk=publication_id)
    if not publication.show_prompt:
        messages.info(request, _("The author keeps this image's prompt and settings to themselves."))
        return redirect("sharing:publication", publication_id=publication.pk)
    # The id, not the prompt, goes in the address: a prompt would reach access logs.
    return redirect(f"{reverse('generator:create')}?{urlencode({'publication': publication.pk})}")


def _get_image(request: AuthenticatedHttpRequest, image_id: str) -> Image:
    return get_object_or_404(owned(Image, request).select_related("task", "publication"), pk=image_id)


def _answer(request: AuthenticatedHttpRequest, image: Image, done: str) -> HttpResponse:
    if request.htmx:
        fresh = Image.objects.select_related("task", "publication").get(pk=image.pk)
        return _render_panel(request, fresh, publishing.PublishForm.for_image(fresh), done=done)
    messages.success(request, done)
    return redirect(safe_next(request, image.detail_url))


def _render_panel(
    request: AuthenticatedHttpRequest,
    image: Image,
    form: publishing.PublishForm,
    *,
    status: int = 200,
    done: str = "",
) -> HttpResponse:
    context = {
        "image": image,
        "publication": publishing.publication_of(image),
        "publish_form": form,
        "publish_done": done,
        "next": safe_next(request, image.detail_url),
    }
    template = PANEL if request.htmx else "sharing/publish.html"
    return render(request, template, context, status=status)


def _render_task_form(
    request: AuthenticatedHttpRequest, task: Task, form: publishing.PublishForm, *, status: int = 200
) -> HttpResponse:
    context = {"task": task, "publish_form": form, "next": safe_next(request, task.get_absolute_url())}
    return render(request, "sharing/publish_task.html", context, status=status)
