"""Style presets: the Presets page (one's own, and staff's read-only) and the picker's card.

A person edits only their own presets here; staff's are edited in the admin. Another person's
preset, and a staff preset's edit or delete, is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest

from ..forms import PresetForm
from ..models import Preset


def _own_preset_or_404(request: AuthenticatedHttpRequest, preset_id: int) -> Preset:
    return get_object_or_404(Preset.objects.select_related("preview"), pk=preset_id, owner=request.user)


@require_GET
def preset_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    presets = Preset.objects.usable_by(request.user).select_related("preview")
    own = [preset for preset in presets if not preset.is_shared]
    shared = [preset for preset in presets if preset.is_shared]
    return render(request, "prompts/presets.html", {"own": own, "shared": shared})


@require_http_methods(["GET", "POST"])
def preset_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _edit(request, Preset(owner=request.user))


@require_http_methods(["GET", "POST"])
def preset_edit(request: AuthenticatedHttpRequest, preset_id: int) -> HttpResponse:
    return _edit(request, _own_preset_or_404(request, preset_id))


def _edit(request: AuthenticatedHttpRequest, preset: Preset) -> HttpResponse:
    creating = preset.pk is None
    form = PresetForm(request.POST or None, instance=preset, owner=request.user)
    if request.method == "POST":
        if form.is_valid():
            saved = form.save()
            message = _("Preset “%(name)s” saved.") if not creating else _("Preset “%(name)s” created.")
            messages.success(request, message % {"name": saved.display_name})
            return redirect("prompts:presets")
        return render(request, "prompts/preset_form.html", {"form": form, "preset": preset}, status=400)
    return render(request, "prompts/preset_form.html", {"form": form, "preset": preset})


@require_POST
def preset_delete(request: AuthenticatedHttpRequest, preset_id: int) -> HttpResponse:
    preset = _own_preset_or_404(request, preset_id)
    name = preset.display_name
    preset.delete()  # tasks keep its name (Task.preset_name); their link to it is cleared
    messages.success(request, _("Preset “%(name)s” deleted. Tasks made with it keep its name.") % {"name": name})
    return redirect("prompts:presets")


@require_GET
def preset_card(request: AuthenticatedHttpRequest, preset_id: int) -> HttpResponse:
    """The picker's card for one preset: its preview and what it sets (htmx swaps it in)."""
    preset = get_object_or_404(Preset.objects.usable_by(request.user).select_related("preview"), pk=preset_id)
    return render(request, "prompts/_preset_card.html", {"preset": preset})
