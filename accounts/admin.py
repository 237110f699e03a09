"""API tokens in the admin: listed and revocable, never a secret (only the sha256 is stored,
and even that is not shown). And the User admin's "Approve selected accounts" action, for
sign-ups made with SIGNUP=approval (generator.admin's UserAdmin lists it)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit import log as audit
from audit.models import Event
from usage.models import Quota

from . import tokens
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "display_prefix",
        "display_scopes",
        "owner",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "owner__username", "prefix")
    list_select_related = ("owner",)
    fields = (
        "name",
        "display_prefix",
        "display_scopes",
        "owner",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description=_("Token"))
    def display_prefix(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description=_("For"))
    def display_scopes(self, token: ApiToken) -> str:
        return ", ".join(token.scope_labels)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are created by their owner, on the account page

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected tokens"), permissions=("delete",))
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = sum(
            tokens.revoke_token(token, request=request)
            for token in queryset.filter(revoked_at__isnull=True).select_related("owner")
        )
        text = ngettext("Revoked %(count)s token.", "Revoked %(count)s tokens.", count) % {"count": count}
        self.message_user(request, text, messages.SUCCESS)


@admin.action(description=_("Approve selected accounts"), permissions=("change",))
def approve_accounts(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
    """Activate the chosen people, who can then sign in (a sign-up waiting for approval is an
    inactive user). An UPDATE each, not a save: activating revokes nothing; each person this
    action activated (not one approved meanwhile) gets one audit entry, sign_up_approved."""
    count = 0
    for person in queryset.filter(is_active=False):
        if User.objects.filter(pk=person.pk, is_active=False).update(is_active=True):
            audit.record(Event.SIGN_UP_APPROVED, request=request, target=person)
            count += 1
    text = ngettext("Approved %(count)s account.", "Approved %(count)s accounts.", count) % {"count": count}
    modeladmin.message_user(request, text, messages.SUCCESS)


class QuotaInline(admin.StackedInline):
    """A person's or a group's own quotas, on their admin page (usage.quotas: a person's value
    wins, else the most generous of their groups', else the QUOTA_* settings; empty = not set here)."""

    model = Quota
    extra = 0
    max_num = 1
    can_delete = True
    fields = ("images_per_day", "images_per_month", "spend_per_month")
    verbose_name = _("quota")
    verbose_name_plural = _("quotas (empty: the next level decides)")
