"""A person's tags: the tag page (counts, rename, delete) and suggestions while typing."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.http import AuthenticatedHttpRequest

from ..models import Tag
from ..ownership import get_owned_or_404, owned
from ..tags import rename_tag

SUGGESTIONS = 20


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
        message = (
            error.messages[0] if isinstance(error, ValidationError) else _("You already have a tag with that name.")
        )
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
