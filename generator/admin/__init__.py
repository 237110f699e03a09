"""The Django admin for staff: tasks, images and tags, actions that go through the services,
and a read-only operations overview (admin/generator/task/overview/).

Every deletion here, whether an action, a single object's delete page or a user's, removes the
stored files too (services.delete_tasks / delete_images: rows now, files after the commit).
Tasks are never added or edited by hand: they change only through their verbs (cancel) and
the services (retry, delete), so the state machine holds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import ModelForm, ModelMultipleChoiceField
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts import tokens
from accounts.admin import QuotaInline, approve_accounts
from audit import log as audit
from audit.models import Event
from usage import quotas

from .. import services
from ..models import Image, Tag, Task
from . import overview

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

logger = logging.getLogger(__name__)


class ImageCount(TypedDict):
    image_count: int


def _thumbnail(image: Image, size: int) -> str:
    # Sized with attributes, not a style attribute: the Content-Security-Policy allows no inline styles.
    if not image.width or not image.height:  # the inline's blank template row
        return ""
    scale = size / max(image.width, image.height, 1)
    return format_html(
        '<img src="{}" alt="" width="{}" height="{}" loading="lazy">',
        image.thumbnail_url,
        max(1, round(image.width * scale)),
        max(1, round(image.height * scale)),
    )


def _task_detail(task: Task, new_task: Task | None = None) -> dict:
    """What the audit log keeps of a task staff acted on: whose, which provider, and the new
    task of a retry (never the prompt)."""
    detail = {"owner": task.owner.get_username(), "provider": task.provider, "model": task.model}
    if new_task is not None:
        detail["new_task"] = str(new_task.pk)
    return detail


def _relabel_delete_selected(actions: dict, description: str | Promise) -> dict:
    """Keep Django's delete_selected (its confirmation page posts that name back), labelled
    for what it does here: it ends in the ModelAdmin's delete_queryset, which removes files."""
    if "delete_selected" in actions:
        func, name, _description = actions["delete_selected"]
        actions["delete_selected"] = (func, name, description)
    return actions


class ImageInline(admin.TabularInline):
    model = Image
    extra = 0
    can_delete = False
    fields = ("preview", "width", "height", "bytes", "seed", "is_favorite")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    @admin.display(description=_("Preview"))
    def preview(self, image: Image) -> str:
        return _thumbnail(image, 96)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = (
        "short_prompt",
        "owner",
        "status",
        "provider",
        "model",
        "num_images",
        "attempts",
        "duration_s",
        "error_code",
        "created_at",
    )
    list_filter = ("status", "provider", "model", "error_code", "created_at")
    search_fields = ("prompt", "owner__username", "=id", "error_code")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "owner",
        "status",
        "provider",
        "model",
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "num_images",
        "steps",
        "guidance_scale",
        "seed",
        "progress",
        "attempts",
        "error_code",
        "error_message",
        "error_text",
        "provider_request_id",
        "created_at",
        "started_at",
        "finished_at",
        "claimed_at",
        "enqueued_at",
        # The scheduler's columns (generator.scheduler): read-only like everything else here.
        # The failover and the note are stored untranslated (reasons.Reason): shown translated.
        "next_attempt_at",
        "held_by",
        "heartbeat_at",
        "provider_job",
        "failed_over_from_text",
        "note_text",
    )
    readonly_fields = fields
    inlines = (ImageInline,)
    actions = ("retry_tasks", "cancel_tasks")

    @admin.display(description=_("Error message (in your language)"))
    def error_text(self, task: Task) -> str:
        return task.error_text

    @admin.display(description=_("failed over from"))
    def failed_over_from_text(self, task: Task) -> str:
        return task.failover_text

    @admin.display(description=_("note"))
    def note_text(self, task: Task) -> str:
        return task.note_text

    @admin.display(description=_("Prompt"))
    def short_prompt(self, task: Task) -> str:
        return Truncator(task.prompt).chars(60)  # plain text: the admin escapes it

    @admin.display(description=_("Duration (s)"))
    def duration_s(self, task: Task) -> str:
        return f"{task.duration.total_seconds():.1f}" if task.duration else "—"

    # Tasks are created by people (and the generate command) through services.create_task.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        return _relabel_delete_selected(
            super().get_actions(request), _("Delete selected tasks with their images and files")
        )

    # --- actions -------------------------------------------------------------------------

    @admin.action(permissions=["change"], description=_("Retry failed or canceled tasks (as new tasks)"))
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        retried, refused, skipped, limit = 0, 0, 0, 0
        over_quota: list[str] = []  # each refusal's own message: which quota, when it resets
        for task in queryset.select_related("owner").order_by("created_at", "pk"):
            try:
                new_task = services.retry_task(task)
            except services.TaskNotRetryable:
                skipped += 1
                continue
            except services.TooManyQueuedTasks as error:
                refused, limit = refused + 1, error.limit
                continue
            except quotas.QuotaExceeded as over:
                over_quota.append(over.exceeded.message)
                continue
            retried += 1
            self.log_change(request, task, gettext("Retried by staff as task %(id)s.") % {"id": new_task.pk})
            audit.record(Event.TASK_RETRIED, request=request, target=task, detail=_task_detail(task, new_task))
            logger.info("task %s retried by staff %s as %s", task.pk, request.user.pk, new_task.pk)
        parts = [
            ngettext(
                "Retried %(count)s task as a new task for the same owner.",
                "Retried %(count)s tasks as new tasks for the same owners.",
                retried,
            )
            % {"count": retried}
        ]
        if skipped:
            parts.append(
                ngettext(
                    "Skipped %(count)s task that is not failed or canceled.",
                    "Skipped %(count)s tasks that are not failed or canceled.",
                    skipped,
                )
                % {"count": skipped}
            )
        if refused:
            # Translators: the maximum is given separately, as "%(limit)s waiting task(s)".
            maximum = ngettext("%(limit)s waiting task", "%(limit)s waiting tasks", limit) % {"limit": limit}
            parts.append(
                ngettext(
                    "Refused %(count)s task: its owner already has the maximum of %(maximum)s.",
                    "Refused %(count)s tasks: their owner already has the maximum of %(maximum)s.",
                    refused,
                )
                % {"count": refused, "maximum": maximum}
            )
        if over_quota:
            parts.append(
                ngettext(
                    "Refused %(count)s task over its owner's quota: %(reasons)s",
                    "Refused %(count)s tasks over their owners' quotas: %(reasons)s",
                    len(over_quota),
                )
                % {"count": len(over_quota), "reasons": " ".join(dict.fromkeys(over_quota))}
            )
        level = messages.SUCCESS if retried and not (skipped or refused or over_quota) else messages.WARNING
        self.message_user(request, " ".join(parts), level)

    @admin.action(permissions=["change"], description=_("Cancel (stop) tasks that have not finished"))
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        canceled, processing, finished = 0, 0, 0
        for task in queryset.order_by("created_at", "pk"):
            if task.is_cancelable:
                if services.cancel_task(task):
                    canceled += 1
                    self.log_change(request, task, gettext("Canceled by staff."))
                    audit.record(Event.TASK_CANCELED, request=request, target=task, detail=_task_detail(task))
                    logger.info("task %s canceled by staff %s", task.pk, request.user.pk)
                    continue
                # A worker took it, or it ended or was deleted, meanwhile.
                task.status = Task.objects.filter(pk=task.pk).values_list("status", flat=True).first() or ""
            if task.status == Task.Status.PROCESSING:
                processing += 1
            else:
                finished += 1
        parts = [ngettext("Canceled %(count)s task.", "Canceled %(count)s tasks.", canceled) % {"count": canceled}]
        if processing:
            parts.append(
                ngettext(
                    "%(count)s task still generating could not be canceled "
                    "(a running generation finishes or fails on its own).",
                    "%(count)s tasks still generating could not be canceled "
                    "(a running generation finishes or fails on its own).",
                    processing,
                )
                % {"count": processing}
            )
        if finished:
            parts.append(
                ngettext(
                    "Skipped %(count)s task already finished.", "Skipped %(count)s tasks already finished.", finished
                )
                % {"count": finished}
            )
        level = messages.SUCCESS if canceled and not (processing or finished) else messages.WARNING
        self.message_user(request, " ".join(parts), level)

    # --- deletion: always with the files ------------------------------------------------

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        self.delete_queryset(request, Task.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        # A plain pk subquery: the changelist's queryset may carry joins or DISTINCT,
        # which PostgreSQL refuses with the service's SELECT ... FOR UPDATE.
        with transaction.atomic():
            chosen = Task.objects.filter(pk__in=queryset.order_by().values("pk"))
            doomed = list(chosen.select_related("owner").select_for_update(of=("self",)))
            deleted = services.delete_tasks(Task.objects.filter(pk__in=[task.pk for task in doomed]))
            for task in doomed:  # one audit entry each, written with the deletion
                audit.record(Event.TASK_DELETED, request=request, target=task, detail=_task_detail(task))
        logger.info("%s tasks deleted by staff %s with their files", deleted, request.user.pk)

    # --- the operations overview ---------------------------------------------------------

    def get_urls(self) -> list:
        overview = path("overview/", self.admin_site.admin_view(self.overview_view), name="generator_overview")
        return [overview, *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Operations overview"),
            "opts": self.opts,
            "overview": overview.build(),
            "changelist_url": reverse("admin:generator_task_changelist"),
        }
        return TemplateResponse(request, "admin/generator/overview.html", context)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = (
        "preview",
        "owner",
        "task_link",
        "tag_list",
        "size",
        "file_size",
        "seed",
        "is_favorite",
        "created_at",
    )
    list_filter = ("is_favorite", "task__provider", "created_at")
    search_fields = ("task__prompt", "owner__username", "=id", "=task__id")
    list_select_related = ("owner", "task")
    fields = (
        "large_preview",
        "id",
        "task_link",
        "owner",
        "tags",
        "is_favorite",
        "file",
        "thumbnail",
        "width",
        "height",
        "bytes",
        "mime",
        "seed",
        "created_at",
    )
    # Staff may tag and favourite an image; everything else is what generation made.
    readonly_fields = tuple(name for name in fields if name not in ("tags", "is_favorite"))
    filter_horizontal = ("tags",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        return super().get_queryset(request).prefetch_related("tags")

    def get_form(
        self, request: HttpRequest, obj: Image | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        tags = form.base_fields.get("tags")
        if obj is not None and isinstance(tags, ModelMultipleChoiceField):
            # Only the image owner's own tags: an image never carries another person's label.
            tags.queryset = Tag.objects.filter(owner_id=obj.owner_id)
        return form

    # Images come only from generation (services.store_images).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        return _relabel_delete_selected(super().get_actions(request), _("Delete selected images and their files"))

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        self.delete_queryset(request, Image.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        with transaction.atomic():
            doomed = list(Image.objects.filter(pk__in=queryset.order_by().values("pk")).select_related("owner"))
            deleted = services.delete_images(Image.objects.filter(pk__in=[image.pk for image in doomed]))
            for image in doomed:  # one audit entry each, written with the deletion
                audit.record(
                    Event.IMAGE_DELETED,
                    request=request,
                    target=image,
                    detail={"owner": image.owner.get_username(), "task": str(image.task_id)},
                )
        logger.info("%s images deleted by staff %s with their files", deleted, request.user.pk)

    @admin.display(description=_("Preview"))
    def preview(self, image: Image) -> str:
        return _thumbnail(image, 64)

    @admin.display(description=_("Preview"))
    def large_preview(self, image: Image) -> str:
        return _thumbnail(image, 384)

    @admin.display(description=_("Task"), ordering="task__created_at")
    def task_link(self, image: Image) -> str:
        url = reverse("admin:generator_task_change", args=[image.task_id])
        return format_html('<a href="{}">{}</a>', url, Truncator(image.task.prompt).chars(40))

    @admin.display(description=_("Tags"))
    def tag_list(self, image: Image) -> str:
        return ", ".join(tag.name for tag in image.tags.all()) or "—"

    @admin.display(description=_("Size"), ordering="width")
    def size(self, image: Image) -> str:
        return f"{image.width}×{image.height}"

    @admin.display(description=_("Bytes"), ordering="bytes")
    def file_size(self, image: Image) -> str:
        return filesizeformat(image.bytes)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "image_count", "created_at")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(image_count=Count("images"))

    @admin.display(description=_("Images"), ordering="image_count")
    def image_count(self, tag: WithAnnotations[Tag, ImageCount]) -> int:
        return tag.image_count


# --- users: deleting a person removes their stored files too ---------------------------------


class UserAdmin(DjangoUserAdmin):
    """Django's user admin, plus approving sign-ups; deleting people deletes their tasks' files."""

    actions = (approve_accounts,)
    inlines = (QuotaInline,)

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        """Audited here, where staff do it: deactivating someone revokes their tokens
        (accounts.models does it again for any other save, silently), and activating an
        account that never signed in approves its sign-up."""
        toggled = change and "is_active" in form.changed_data
        if toggled and not obj.is_active:
            tokens.revoke_all(obj, request=request, reason="deactivated")
        super().save_model(request, obj, form, change)
        if toggled and obj.is_active and obj.last_login is None:
            audit.record(Event.SIGN_UP_APPROVED, request=request, target=obj)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Django's page for staff setting someone's password; audited when it was set (Django
        then redirects to the person's page; a refused form is a 200, a conflicting one a
        redirect back here)."""
        response = super().user_change_password(request, id, form_url)
        done = reverse("admin:auth_user_change", args=(unquote(id),))
        if request.method == "POST" and response.status_code == 302 and response["Location"] == done:
            person = User.objects.get(pk=unquote(id))
            audit.record(Event.PASSWORD_CHANGED, request=request, target=person, detail={"by_staff": True})
        return response

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        with transaction.atomic():
            services.delete_tasks(Task.objects.filter(owner_id=obj.pk))
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        with transaction.atomic():
            services.delete_tasks(Task.objects.filter(owner_id__in=queryset.order_by().values("pk")))
            super().delete_queryset(request, queryset)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, UserAdmin)
