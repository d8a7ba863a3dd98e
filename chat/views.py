"""HTTP views: the page, the history API, the health check and the metrics. Thin: they call
selectors (and chat.metrics)."""

from __future__ import annotations

import math
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from chat import address_limits, health, metrics, protocol, selectors
from chat.accounts import client_address
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
async def messages_api(request: HttpRequest) -> JsonResponse:
    """History as JSON, oldest first: `after` (an id) and `limit` (1 to CHAT_RESUME_CAP).

    At most CHAT_API_RATE requests per CHAT_API_PERIOD from one client address (on every
    worker together); past that, 429 with `Retry-After`.
    """
    retry_after = await address_limits.api_limit().check(client_address(request))
    if retry_after is not None:
        wait = max(1, math.ceil(retry_after))
        response = JsonResponse(
            {
                "error": "rate_limited",
                "detail": f"Too many requests; try again in {wait} seconds.",
                "retry_after": round(retry_after, 3),
            },
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
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
    body = await sync_to_async(_history_page)(after=after, limit=limit)
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


def _history_page(*, after: int | None, limit: int) -> dict[str, object]:
    """The API's body: `limit` messages (the newest, or those after `after`), `has_more`."""
    if after is None:
        rows, has_more = selectors.message_list_latest(limit=limit)
    else:
        rows = selectors.message_list_after(after=after, limit=limit + 1)
        has_more = len(rows) > limit
        rows = rows[:limit]
    return {"messages": [message_to_frame(m) for m in rows], "has_more": has_more}


async def healthz_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when this worker's database, layer subscription and presence heartbeat
    are fine; 503 naming what failed (chat.health). Also served at /healthz."""
    failed, age = await health.check_ready()

    def state(name: str) -> str:
        return "failed" if name in failed else "ok"

    body: dict[str, object] = {
        "status": "ok" if not failed else "unavailable",
        "database": state(health.DATABASE),
        "channel_layer": state(health.CHANNEL_LAYER),
        # No heartbeat until a socket joins this worker (and none without Redis).
        "presence": state(health.PRESENCE) if age is not None else "idle",
        "layer": "redis" if settings.REDIS_URL else "in-memory",
    }
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


@require_safe
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """This worker's metrics, in Prometheus' text format: only for CHAT_METRICS_ALLOW
    addresses or a request with the bearer token (403 otherwise); 404 with metrics off."""
    if not metrics.ENABLED:
        raise Http404("metrics are off")
    if not metrics.allowed(
        address=client_address(request), authorization=request.headers.get("Authorization")
    ):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    # In the event loop: collecting reads the worker's in-memory state (no I/O but /proc).
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)


async def healthz_live(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 whenever the worker's event loop runs this view; checks nothing else,
    so that a database or Redis outage never gets a worker restarted."""
    return JsonResponse({"status": "ok"})
