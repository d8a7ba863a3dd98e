"""HTTP views: the page, the history API and the health check. Thin: they call selectors."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_safe

from chat import health, protocol, selectors
from chat.serializers import message_to_frame

# The codes of chat/protocol.py that the page acts on, so that it holds no copies of them.
PAGE_PROTOCOL = {
    "close": {
        "policyViolation": protocol.CLOSE_POLICY_VIOLATION,
        "tooBig": protocol.CLOSE_TOO_BIG,
        "tryAgainLater": protocol.CLOSE_TRY_AGAIN_LATER,
        "serviceRestart": protocol.CLOSE_SERVICE_RESTART,
    },
    "errors": {
        "invalidJson": protocol.INVALID_JSON,
        "invalidType": protocol.INVALID_TYPE,
        "invalidBody": protocol.INVALID_BODY,
        "tooLong": protocol.TOO_LONG,
        "invalidNick": protocol.INVALID_NICK,
        "rateLimited": protocol.RATE_LIMITED,
        "binaryUnsupported": protocol.BINARY_UNSUPPORTED,
        "unavailable": protocol.UNAVAILABLE,
        "forbidden": protocol.FORBIDDEN,
        "muted": protocol.MUTED,
    },
}


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """The chat page; its configuration and UI strings reach the script through json_script."""

    def plural(forms: Callable[[int], str]) -> dict[str, str]:
        # Both forms, for Intl.PluralRules' "one" and "other" (enough for en and pt-BR).
        return {"one": forms(1), "other": forms(2)}

    strings = {
        "connecting": gettext("Connecting…"),
        "online": gettext("Online"),
        "reconnecting": gettext("Reconnecting…"),
        "reconnectingIn": gettext("Reconnecting in %(seconds)s s"),
        "offline": gettext("Offline"),
        "onlineCount": plural(lambda n: ngettext("%(count)s online", "%(count)s online", n)),
        "you": gettext("You"),
        "youSuffix": gettext("(you)"),
        "joined": gettext("%(nick)s joined"),
        "left": gettext("%(nick)s left"),
        "renamed": gettext("%(old)s is now %(new)s"),
        "manyJoined": plural(
            lambda n: ngettext("%(count)s person joined", "%(count)s people joined", n)
        ),
        "manyLeft": plural(lambda n: ngettext("%(count)s person left", "%(count)s people left", n)),
        "typingOne": gettext("%(nick)s is typing…"),
        "typingTwo": gettext("%(first)s and %(second)s are typing…"),
        "typingMany": gettext("Several people are typing…"),
        "pending": gettext("Sending…"),
        "retrying": gettext("Waiting to send…"),
        "sent": gettext("Sent"),
        "failed": gettext("Not sent: %(reason)s"),
        "retry": gettext("Retry"),
        "discard": gettext("Discard"),
        "newMessages": plural(
            lambda n: ngettext("%(count)s new message", "%(count)s new messages", n)
        ),
        "charsLeft": plural(
            lambda n: ngettext("%(count)s character left", "%(count)s characters left", n)
        ),
        "charsOver": plural(
            lambda n: ngettext("%(count)s character too many", "%(count)s characters too many", n)
        ),
        "nickInvalid": gettext("Nickname refused: %(reason)s"),
        "nickEmpty": gettext("Enter a nickname."),
        "nickTooLong": gettext("At most %(max)s characters."),
        "nickControl": gettext("Control characters are not allowed."),
        "historyError": gettext("Could not load earlier messages; some may be missing."),
        # Accounts and moderation (the durations match MUTE_SECONDS and BAN_SECONDS in
        # static/chat/moderation.js).
        "account": gettext("signed-in account"),
        "modDelete": gettext("Delete"),
        "modDeleteName": gettext("Delete message from %(nick)s at %(time)s"),
        "modDeleteOwnName": gettext("Delete your message at %(time)s"),
        "modMute": gettext("Mute"),
        "modMuteName": gettext("Mute %(nick)s for 10 minutes"),
        "modBan": gettext("Ban"),
        "modBanName": gettext("Ban %(nick)s for 1 hour"),
        "confirmDelete": gettext("Delete the message from %(nick)s at %(time)s for everyone?"),
        "confirmDeleteOwn": gettext("Delete your message at %(time)s for everyone?"),
        "confirmMute": gettext("Mute %(nick)s for 10 minutes?"),
        "confirmBan": gettext("Ban %(nick)s for 1 hour?"),
        "deleteSent": gettext("Deleting the message…"),
        "muteSent": gettext("Muting %(nick)s for 10 minutes…"),
        "banSent": gettext("Banning %(nick)s for 1 hour…"),
        "modOffline": gettext("Not connected; try again when online."),
        "removed": plural(
            lambda n: ngettext("%(count)s message removed", "%(count)s messages removed", n)
        ),
        "mutedFor": plural(
            lambda n: ngettext(
                "you are muted for %(count)s minute.", "you are muted for %(count)s minutes.", n
            )
        ),
        # Keyed by the protocol's error codes; "unknown" is the page's own fallback.
        "errors": {
            protocol.TOO_LONG: gettext("the message is too long."),
            protocol.INVALID_BODY: gettext("the message is empty or invalid."),
            protocol.INVALID_JSON: gettext("the server could not read it."),
            protocol.INVALID_TYPE: gettext("the server could not read it."),
            protocol.BINARY_UNSUPPORTED: gettext("the server could not read it."),
            protocol.INVALID_NICK: gettext("the nickname is not allowed."),
            protocol.RATE_LIMITED: gettext("too many messages; waiting."),
            protocol.UNAVAILABLE: gettext("the server could not store it."),
            protocol.FORBIDDEN: gettext("you are not allowed to do that."),
            protocol.MUTED: gettext("you are muted."),
            "unknown": gettext("the server refused it."),
        },
    }
    config = {
        "wsPath": "/ws/chat/",
        "apiPath": "/api/messages",
        "maxBody": settings.CHAT_MAX_BODY,
        "maxNick": protocol.MAX_NICK,
        "typingInterval": settings.CHAT_TYPING_INTERVAL,
        "protocol": PAGE_PROTOCOL,
        "strings": strings,
    }
    return render(request, "chat/index.html", {"chat_config": config})


def _bad_request(reason: str) -> JsonResponse:
    return JsonResponse({"error": "bad_request", "detail": reason}, status=400)


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"'{name}' must be a non-negative integer.")
    return int(raw)


@require_safe
def messages_api(request: HttpRequest) -> JsonResponse:
    """History as JSON, oldest first: `after` (an id) and `limit` (1 to CHAT_RESUME_CAP)."""
    try:
        after = _int_param(request, "after")
        limit = _int_param(request, "limit")
    except ValueError as exc:
        return _bad_request(str(exc))
    cap = settings.CHAT_RESUME_CAP or 500
    if limit is None:
        limit = min(settings.CHAT_HISTORY or 50, cap)
    if not 1 <= limit <= cap:
        return _bad_request(f"'limit' must be between 1 and {cap}.")
    if after is None:
        rows, has_more = selectors.message_list_latest(limit=limit)
    else:
        rows = selectors.message_list_after(after=after, limit=limit + 1)
        has_more = len(rows) > limit
        rows = rows[:limit]
    return JsonResponse(
        {"messages": [message_to_frame(m) for m in rows], "has_more": has_more},
        json_dumps_params={"ensure_ascii": False},
    )


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer answer; 503 naming what failed."""
    checks = {
        "database": await health.check_database(),
        "channel_layer": await health.check_channel_layer(),
    }
    failed = {name: reason for name, reason in checks.items() if reason is not None}
    body: dict[str, object] = {
        "status": "ok" if not failed else "unavailable",
        "database": "ok" if "database" not in failed else "failed",
        "channel_layer": "ok" if "channel_layer" not in failed else "failed",
        "layer": "redis" if settings.REDIS_URL else "in-memory",
    }
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)
