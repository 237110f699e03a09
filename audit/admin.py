"""The audit log in the admin: staff browse and filter it; nobody adds, edits or deletes an
entry here, superusers included (retention, AUDIT_RETENTION_DAYS, is the only deletion)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "event", "actor_name", "address", "target_type", "target_id", "target_repr")
    list_filter = ("event", "at", "target_type")
    date_hierarchy = "at"
    # Who, which object, which address: partial matches (PostgreSQL compares HOST(address) as
    # text, so any search term is safe against the inet column).
    search_fields = ("actor_name", "=target_id", "address", "target_repr")
    list_select_related = ("actor",)
    fields = (
        "at",
        "event",
        "actor",
        "actor_name",
        "address",
        "target_type",
        "target_id",
        "target_repr",
        "detail",
    )
    readonly_fields = fields
    actions = None  # no bulk delete, nor any other action
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the change page is a read-only view page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
