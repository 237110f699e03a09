"""GET /api/v1/presets: the style presets the caller may use (their own, then staff's)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.http import AuthenticatedHttpRequest
from generator.api.http import api_view, error
from generator.views.files import serve_image

from ..models import Preset


def preset_json(preset: Preset, viewer: User) -> dict:
    return {
        "id": preset.pk,
        "name": preset.display_name,
        "owner": "staff" if preset.is_shared else "you",
        "prompt_template": preset.prompt_template,
        "negative_prompt": preset.negative_prompt,
        "model": preset.model or None,
        "width": preset.width,
        "height": preset.height,
        "steps": preset.steps,
        "guidance_scale": preset.guidance_scale,
        "preview_thumbnail_url": preview_url(preset),
    }


def preview_url(preset: Preset) -> str | None:
    """Where the preset's preview thumbnail is served to everyone who may use the preset (a
    staff preset's preview is one person's image: its own file URL is theirs only)."""
    return reverse("api:preset_preview", args=[preset.pk]) if preset.preview_id else None


@api_view("GET", page_asset=True)
def preset_preview(request: AuthenticatedHttpRequest, preset_id: int) -> HttpResponseBase:
    """The preview's thumbnail, to anyone who may use the preset; 404 otherwise or without one."""
    preset = Preset.objects.usable_by(request.user).select_related("preview").filter(pk=preset_id).first()
    if preset is None or preset.preview is None:
        return error(404, "not_found", _("No such preset."))
    return serve_image(request, preset.preview, thumbnail=True, etag_key=f"preset{preset.pk}")


@api_view("GET")
def preset_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    presets = Preset.objects.usable_by(request.user).select_related("preview")
    own = [preset for preset in presets if not preset.is_shared]
    shared = [preset for preset in presets if preset.is_shared]
    return JsonResponse({"results": [preset_json(preset, request.user) for preset in own + shared]})
