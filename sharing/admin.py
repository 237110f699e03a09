"""Staff's side of sharing: published images (hide one from Explore with a reason the author
sees, or unhide it) and share links (the working ones by default; revoke).

Counts are never edited by hand; nothing is added here (people publish and make links
themselves); a link's digest is never shown.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from audit import log as audit
from audit.models import Event

from . import links
from .models import Publication, ShareLink

logger = logging.getLogger(__name__)


class HideForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=Publication._meta.get_field("hidden_reason").max_length,
        strip=True,
        help_text=_("The author sees it as “Hidden by staff: <reason>”."),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class HiddenFilter(admin.SimpleListFilter):
    title = _("hidden")
    parameter_name = "hidden"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", gettext("Hidden")), ("no", gettext("Shown on Explore"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(hidden_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(hidden_at__isnull=True)
        return queryset


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    list_display = (
        "preview",
        "__str__",
        "owner",
        "published_at",
        "like_count",
        "favourite_count",
        "view_count",
        "download_count",
        "is_hidden",
    )
    list_display_links = ("preview", "__str__")
    list_filter = (HiddenFilter, "provider", "model")
    list_select_related = ("owner", "image")
    search_fields = ("title", "owner__username")
    date_hierarchy = "published_at"
    fields = (
        "preview",
        "image",
        "owner",
        "title",
        "show_prompt",
        "provider",
        "model",
        "prompt",
        "published_at",
        "like_count",
        "favourite_count",
        "view_count",
        "download_count",
        "popular_score",
        "hidden_at",
        "hidden_reason",
        "hidden_by",
    )
    # The author's words and the counts are theirs and the site's: staff hide or unhide only.
    readonly_fields = fields
    actions = ("hide_publications", "unhide_publications")

    @admin.display(description=_("Preview"))
    def preview(self, publication: Publication) -> str:
        image = publication.image
        scale = 96 / max(image.width, image.height, 1)
        # Sized with attributes: the Content-Security-Policy allows no inline styles.
        return format_html(
            '<img src="{}" alt="" width="{}" height="{}" loading="lazy">',
            image.thumbnail_url,
            max(1, round(image.width * scale)),
            max(1, round(image.height * scale)),
        )

    @admin.display(description=_("hidden"), boolean=True, ordering="hidden_at")
    def is_hidden(self, publication: Publication) -> bool:
        return publication.is_hidden

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(permissions=["change"], description=_("Hide from Explore (asks for a reason)"))
    def hide_publications(self, request: HttpRequest, queryset: QuerySet[Publication]) -> TemplateResponse | None:
        form = HideForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            count = 0
            for publication in queryset.select_related("image"):
                publication.hide(request.user, reason)  # type: ignore[arg-type]  # staff: signed in
                self.log_change(request, publication, gettext("Hidden by staff: %(reason)s") % {"reason": reason})
                audit.record(Event.IMAGE_HIDDEN, request=request, target=publication, detail={"reason": reason})
                logger.info("publication %s hidden by staff %s", publication.pk, request.user.pk)
                count += 1
            self.message_user(
                request,
                ngettext(
                    "Hid %(count)s published image from Explore; its author sees the reason.",
                    "Hid %(count)s published images from Explore; their authors see the reason.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Hide from Explore"),
            "opts": self.model._meta,
            "form": form,
            "publications": queryset.select_related("owner"),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/sharing/publication/hide.html", context)

    @admin.action(permissions=["change"], description=_("Unhide: show on Explore again"))
    def unhide_publications(self, request: HttpRequest, queryset: QuerySet[Publication]) -> None:
        count = 0
        for publication in queryset.filter(hidden_at__isnull=False):
            publication.unhide()
            self.log_change(request, publication, gettext("Shown on Explore again by staff."))
            audit.record(Event.IMAGE_UNHIDDEN, request=request, target=publication)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%(count)s published image is on Explore again.",
                "%(count)s published images are on Explore again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


class LinkStateFilter(admin.SimpleListFilter):
    """Working links unless asked otherwise: staff come here to find one to revoke."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("active", gettext("Working")),
            ("revoked", gettext("Revoked")),
            ("expired", gettext("Expired")),
            ("all", gettext("All")),
        ]

    def value(self) -> str:
        return super().value() or "active"

    def choices(self, changelist: Any) -> Any:
        # Django's "All" means no parameter, which here is "active": offer the four plainly.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        match self.value():
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
            case "expired":
                return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
            case "all":
                return queryset
            case _:
                return queryset.filter(unexpired, revoked_at__isnull=True)


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "image_count",
        "created_at",
        "expires_at",
        "revoked_at",
        "view_count",
        "show_prompt",
    )
    list_filter = (LinkStateFilter, "show_prompt")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "=prefix")
    date_hierarchy = "created_at"
    # Never the digest: it is the secret's stand-in.
    fields = (
        "owner",
        "title",
        "prefix",
        "show_prompt",
        "image_count",
        "created_at",
        "expires_at",
        "revoked_at",
        "view_count",
    )
    readonly_fields = fields
    actions = ("revoke_links",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShareLink]:
        return super().get_queryset(request).annotate(image_total=Count("entries"))

    @admin.display(description=_("images"), ordering="image_total")
    def image_count(self, link: ShareLink) -> int:
        return getattr(link, "image_total", 0)

    # People make links from their gallery; staff can only revoke them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(permissions=["change"], description=_("Revoke: the links show nothing from now on"))
    def revoke_links(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        count = 0
        for link in queryset:
            if links.revoke(link, request=request):
                self.log_change(request, link, gettext("Revoked by staff."))
                count += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)s share link.", "Revoked %(count)s share links.", count) % {"count": count},
            messages.SUCCESS,
        )
