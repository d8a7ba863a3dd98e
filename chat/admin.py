"""The moderators' admin: messages (deleting retracts them live), deletions, sanctions.

Every write goes through chat.moderation, so an admin delete records its audit row and
reaches open pages, and a sanction created or lifted here reaches every worker. Moderators
are staff accounts, or staff given the `chat.moderate_message` permission; the admin itself
is for staff only (a non-staff moderator moderates from the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import Truncator

from chat import moderation
from chat.models import Deletion, Message, Sanction
from chat.selectors import can_moderate

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


class SenderFilter(admin.SimpleListFilter):
    """Signed-in senders or guests."""

    title = "sender"
    parameter_name = "sender"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The two kinds of sender."""
        return [("account", "signed in"), ("guest", "guest")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        """Messages of the chosen kind of sender."""
        if self.value() == "account":
            return queryset.filter(user__isnull=False)
        if self.value() == "guest":
            return queryset.filter(user__isnull=True)
        return queryset


class ModeratorOnly:
    """Visible to moderators; nothing is added or edited by hand."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Moderators see the chat section."""
        return can_moderate(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Moderators may look."""
        return can_moderate(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Rows are made by the chat, not by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are records: never edited."""
        return False


@admin.register(Message)
class MessageAdmin(ModeratorOnly, admin.ModelAdmin[Message]):
    """Stored messages; deleting (one or many) retracts them from every open page."""

    list_display = ["id", "sent_at", "nick", "excerpt", "user", "session"]
    list_display_links = ["id", "excerpt"]
    search_fields = ["body", "nick", "=session"]
    list_filter = ["sent_at", SenderFilter, ("user", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "sent_at"
    ordering = ["-id"]
    list_select_related = ["user"]
    show_full_result_count = False
    readonly_fields = ["nick", "body", "sent_at", "client_id", "session", "user"]

    @admin.display(description="body")
    def excerpt(self, obj: Message) -> str:
        """The start of the body (shown as text: the admin escapes it)."""
        return Truncator(obj.body).chars(80)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Moderators may delete."""
        return can_moderate(request.user)

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        """Delete through the service: recorded, and retracted live."""
        moderation.message_delete(ids=[obj.pk], by=request.user, via="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        """Bulk delete through the service: recorded, and retracted live."""
        ids = list(queryset.values_list("pk", flat=True))
        moderation.message_delete(ids=ids, by=request.user, via="admin")


@admin.register(Deletion)
class DeletionAdmin(ModeratorOnly, admin.ModelAdmin[Deletion]):
    """The audit trail of deleted messages: read-only."""

    list_display = ["message_id", "deleted_at", "deleted_by", "via", "nick", "excerpt", "sent_at"]
    search_fields = ["body", "nick", "=session", "=message_id"]
    list_filter = ["deleted_at", "via", ("deleted_by", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "deleted_at"
    list_select_related = ["deleted_by"]
    readonly_fields = [
        "message_id",
        "nick",
        "body",
        "sent_at",
        "session",
        "sender",
        "deleted_by",
        "deleted_at",
        "via",
    ]

    @admin.display(description="body")
    def excerpt(self, obj: Deletion) -> str:
        """The start of the deleted body."""
        return Truncator(obj.body).chars(80)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The record is kept."""
        return False


class ActiveFilter(admin.SimpleListFilter):
    """In force now, or ended (expired or lifted)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """In force or ended."""
        return [("active", "in force"), ("ended", "ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Sanction]) -> QuerySet[Sanction]:
        """Sanctions of the chosen status."""
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True, expires_at__gt=now)
        if self.value() == "ended":
            return queryset.exclude(lifted_at__isnull=True, expires_at__gt=now)
        return queryset


class SanctionForm(forms.ModelForm[Sanction]):
    """A new mute or ban: one target, a duration, an optional reason."""

    seconds = forms.IntegerField(
        min_value=1,
        initial=3600,
        help_text="How long, in seconds (3600: an hour; 86400: a day; 604800: a week).",
    )

    class Meta:
        model = Sanction
        fields = ["kind", "user", "session", "address", "reason"]

    def clean(self) -> dict[str, Any]:
        """Exactly one target, and never a moderator's account."""
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data
        # NULL, not "", for an absent target (the table's constraint counts non-NULL ones).
        for name in ("session", "address"):
            data[name] = data.get(name) or None
        targets = [name for name in ("user", "session", "address") if data.get(name)]
        if len(targets) != 1:
            raise forms.ValidationError(
                "Give exactly one target: an account, a session or an address."
            )
        user = data.get("user")
        if user is not None and can_moderate(user):
            self.add_error("user", "A moderator cannot be muted or banned.")
        return data


@admin.register(Sanction)
class SanctionAdmin(admin.ModelAdmin[Sanction]):
    """Mutes and bans: create here, lift with the action; every worker reloads them."""

    form = SanctionForm
    list_display = [
        "id",
        "kind",
        "target",
        "in_force",
        "expires_at",
        "created_by",
        "created_at",
        "lifted_at",
        "reason",
    ]
    list_filter = [ActiveFilter, "kind"]
    search_fields = ["user__username", "=session", "=address", "reason"]
    list_select_related = ["user", "created_by"]
    raw_id_fields = ["user"]
    actions = ["lift"]
    readonly_fields = [
        "kind",
        "user",
        "session",
        "address",
        "reason",
        "expires_at",
        "created_by",
        "created_at",
        "lifted_at",
        "lifted_by",
    ]

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj: Sanction) -> bool:
        """Not lifted and not expired."""
        return obj.lifted_at is None and obj.expires_at > timezone.now()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """All fields on an existing sanction; none on the form for a new one."""
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> _FieldGroups:
        """The form's fields for a new sanction; the record's for an existing one."""
        if obj is None:
            return ["kind", "user", "session", "address", "seconds", "reason"]
        return list(self.readonly_fields)

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Moderators see sanctions."""
        return can_moderate(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Moderators may look."""
        return can_moderate(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Moderators may mute and ban."""
        return can_moderate(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A sanction is not edited: lift it and create another."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The record is kept: lift instead."""
        return False

    def has_lift_permission(self, request: HttpRequest) -> bool:
        """Moderators may lift (the `lift` action)."""
        return can_moderate(request.user)

    def save_model(self, request: HttpRequest, obj: Sanction, form: Any, change: bool) -> None:
        """Create through the service (which publishes the reload event)."""
        data = form.cleaned_data
        created = moderation.sanction_create(
            kind=data["kind"],
            seconds=data["seconds"],
            by=request.user,
            user=data.get("user"),
            session=data.get("session") or None,
            address=data.get("address") or None,
            reason=data.get("reason") or "",
        )
        # The admin logs and redirects with the instance it handed in.
        obj.pk = created.pk
        for field in ("session", "address", "expires_at", "created_at", "created_by_id"):
            setattr(obj, field, getattr(created, field))
        obj._state.adding = False
        obj._state.db = created._state.db

    @admin.action(description="Lift the selected sanctions now", permissions=["lift"])
    def lift(self, request: HttpRequest, queryset: QuerySet[Sanction]) -> None:
        """End each selected sanction now."""
        lifted = sum(
            moderation.sanction_lift(id=pk, by=request.user)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{lifted} sanction(s) lifted.", messages.SUCCESS)
