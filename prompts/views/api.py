"""GET /api/v1/presets: the style presets the caller may use (their own, then staff's)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import JsonResponse

from accounts.http import AuthenticatedHttpRequest
from generator.api.http import api_view

from ..models import Preset


def preset_json(preset: Preset, viewer: User) -> dict:
    preview = preset.preview
    # A staff preset's preview may be an image only its owner and staff can fetch.
    visible = preview is not None and (preview.owner_id == viewer.pk or viewer.is_staff)
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
        "preview_thumbnail_url": preview.thumbnail_url if visible and preview is not None else None,
    }


@api_view("GET")
def preset_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    presets = Preset.objects.usable_by(request.user).select_related("preview")
    own = [preset for preset in presets if not preset.is_shared]
    shared = [preset for preset in presets if preset.is_shared]
    return JsonResponse({"results": [preset_json(preset, request.user) for preset in own + shared]})
