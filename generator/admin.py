from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html
from django.utils.text import Truncator

from .models import Image, Tag, Task


def _thumbnail(image: Image, size: int) -> str:
    # Sized with attributes, not a style attribute: the Content-Security-Policy allows no inline styles.
    if not image.width or not image.height:  # the inline's blank template row
        return ""
    scale = size / max(image.width, image.height, 1)
    return format_html(
        '<img src="{}" alt="" width="{}" height="{}" loading="lazy">',
        image.thumbnail_url, max(1, round(image.width * scale)), max(1, round(image.height * scale)),
    )


class ImageInline(admin.TabularInline):
    model = Image
    extra = 0
    can_delete = False
    fields = ("preview", "width", "height", "bytes", "seed", "is_favorite")
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="Preview")
    def preview(self, image: Image) -> str:
        return _thumbnail(image, 96)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("short_prompt", "owner", "status", "provider", "model", "num_images", "attempts", "duration_s", "created_at")
    list_filter = ("status", "provider", "model", "created_at")
    search_fields = ("prompt", "owner__username", "=id", "error_code")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    readonly_fields = ("id", "created_at", "started_at", "finished_at", "attempts", "progress", "provider_request_id")
    inlines = [ImageInline]

    @admin.display(description="Prompt")
    def short_prompt(self, task: Task) -> str:
        return Truncator(task.prompt).chars(60)

    @admin.display(description="Duration (s)")
    def duration_s(self, task: Task) -> str:
        return f"{task.duration.total_seconds():.1f}" if task.duration else "—"


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("preview", "owner", "task", "width", "height", "bytes", "seed", "is_favorite", "created_at")
    list_filter = ("is_favorite", "task__provider", "created_at")
    search_fields = ("task__prompt", "owner__username", "=id")
    list_select_related = ("owner", "task")
    readonly_fields = ("large_preview", "id", "task", "owner", "file", "thumbnail", "width", "height", "bytes", "mime", "seed", "created_at")
    filter_horizontal = ("tags",)

    @admin.display(description="Preview")
    def preview(self, image: Image) -> str:
        return _thumbnail(image, 64)

    @admin.display(description="Preview")
    def large_preview(self, image: Image) -> str:
        return _thumbnail(image, 384)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "image_count", "created_at")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(image_count=Count("images"))

    @admin.display(description="Images", ordering="image_count")
    def image_count(self, tag: Tag) -> int:
        return tag.image_count
