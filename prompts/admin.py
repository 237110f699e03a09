"""Staff's style presets (no owner: for everyone) in the admin; people's own presets are shown
read-only (they edit them on their Presets page)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .models import Preset


class OwnerKindFilter(admin.SimpleListFilter):
    title = _("whose")
    parameter_name = "whose"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("staff", str(_("Everyone’s (staff)"))), ("personal", str(_("People’s own")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Preset]) -> QuerySet[Preset]:
        if self.value() == "staff":
            return queryset.filter(owner__isnull=True)
        if self.value() == "personal":
            return queryset.filter(owner__isnull=False)
        return queryset


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ["name", "name_zh_hans", "owner", "position", "thumbnail", "model", "created_at"]
    list_display_links = ["name"]
    list_editable = ["position"]
    list_filter = [OwnerKindFilter]
    list_select_related = ["owner", "preview"]
    search_fields = ["name", "name_zh_hans", "prompt_template", "owner__username"]
    ordering = ["owner", "position", "name"]
    # Staff may pick any image they can see as a preview: by its id.
    raw_id_fields = ["preview"]
    fields = [
        "name",
        "name_zh_hans",
        "prompt_template",
        "negative_prompt",
        "model",
        ("width", "height"),
        ("steps", "guidance_scale"),
        "preview",
        "thumbnail",
        "position",
    ]
    readonly_fields = ["thumbnail"]

    @admin.display(description=_("preview"))
    def thumbnail(self, preset: Preset) -> SafeString | str:
        if preset.preview is None:
            return "—"
        return format_html('<img src="{}" alt="" width="64" height="64" loading="lazy">', preset.preview.thumbnail_url)

    def has_change_permission(self, request: HttpRequest, obj: Preset | None = None) -> bool:
        """A person's own preset is theirs to change (the Presets page): read-only here."""
        if obj is not None and obj.owner_id is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Preset, form: object, change: bool) -> None:
        if not change:
            obj.owner = None  # made in the admin: a preset for everyone
        super().save_model(request, obj, form, change)
