"""HTTP views: the history API, the health check, the page's headers (chat.views)."""

from __future__ import annotations

import json
import re

import pytest

from chat import health, protocol
from chat.models import Message
from chat.serializers import message_to_frame
from tests.support.servers import ROOT

pytestmark = pytest.mark.django_db

API = "/api/messages"
EMOJI = "\U0001f600"


def get_ids(client, **params: object) -> list[int]:
    response = client.get(API, params)
    assert response.status_code == 200
    return [m["id"] for m in response.json()["messages"]]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# --- /api/messages: latest ------------------------------------------------------------------


def test_api_without_params_returns_the_latest_history(client, ids, settings):
    settings.CHAT_HISTORY = 3
    assert get_ids(client) == ids[-3:]


def test_api_without_params_returns_everything_when_it_fits(client, ids):
    assert get_ids(client) == ids


def test_api_without_params_has_more_when_history_is_cut(client, ids, settings):
    settings.CHAT_HISTORY = 3
    assert client.get(API).json()["has_more"] is True


def test_api_without_params_has_no_more_when_all_fit(client, ids):
    assert client.get(API).json()["has_more"] is False


def test_api_default_limit_is_capped_by_resume_cap(client, ids, settings):
    settings.CHAT_HISTORY = 50
    settings.CHAT_RESUME_CAP = 4
    assert get_ids(client) == ids[-4:]


def test_api_limit_alone_returns_the_newest_n(client, ids):
    assert get_ids(client, limit=2) == ids[-2:]


def test_api_on_an_empty_database_returns_no_messages(client):
    assert client.get(API).json() == {"messages": [], "has_more": False}


def test_api_returns_json(client, ids):
    assert client.get(API)["Content-Type"] == "application/json"


# --- /api/messages: after -------------------------------------------------------------------


def test_api_after_returns_exactly_the_later_ids(client, ids):
    assert get_ids(client, after=ids[6]) == ids[7:]


def test_api_after_zero_returns_from_the_oldest(client, ids):
    assert get_ids(client, after=0, limit=3) == ids[:3]


def test_api_after_with_limit_returns_the_oldest_after(client, ids):
    assert get_ids(client, after=ids[2], limit=3) == ids[3:6]


def test_api_after_has_more_when_the_limit_cuts(client, ids):
    assert client.get(API, {"after": ids[2], "limit": 3}).json()["has_more"] is True


def test_api_after_has_no_more_when_the_limit_is_exactly_met(client, ids):
    assert client.get(API, {"after": ids[6], "limit": 3}).json()["has_more"] is False


def test_api_after_the_last_id_is_empty(client, ids):
    assert client.get(API, {"after": ids[-1]}).json() == {"messages": [], "has_more": False}


def test_api_after_beyond_the_last_id_is_empty(client, ids):
    assert get_ids(client, after=ids[-1] + 1000) == []


def test_api_after_larger_than_any_database_integer_is_empty(client, ids):
    assert get_ids(client, after=10**30) == []


def test_api_is_oldest_first(client, ids):
    bodies = [m["body"] for m in client.get(API, {"after": 0}).json()["messages"]]
    assert bodies == [f"m{n}" for n in range(10)]


def test_api_pages_through_everything_without_gaps_or_duplicates(client, ids):
    seen: list[int] = []
    after, has_more = 0, True
    while has_more:
        data = client.get(API, {"after": after, "limit": 3}).json()
        seen += [m["id"] for m in data["messages"]]
        after, has_more = seen[-1], data["has_more"]
    assert seen == ids


# --- /api/messages: the message objects -----------------------------------------------------


def test_api_messages_are_the_serializer_frames(client, ids):
    expected = [message_to_frame(m) for m in Message.objects.order_by("id")]
    assert client.get(API, {"after": 0}).json()["messages"] == expected


def test_api_message_has_the_wire_fields(client, ids):
    message = client.get(API, {"limit": 1}).json()["messages"][0]
    assert set(message) == {
        "type",
        "id",
        "nick",
        "body",
        "sent_at",
        "client_id",
        "session",
        "account",
    }


def test_api_sent_at_is_utc_with_milliseconds(client, ids):
    sent_at = client.get(API, {"limit": 1}).json()["messages"][0]["sent_at"]
    assert sent_at.endswith("Z") and len(sent_at.split(".")[1]) == len("123Z")


def test_api_keeps_non_ascii_unescaped(client):
    Message.objects.create(nick="Zoë", body=f"olá {EMOJI}", session="s")
    assert f"olá {EMOJI}".encode() in client.get(API).content


def test_api_returns_body_text_as_stored(client):
    Message.objects.create(nick="Ana", body="<script>alert(1)</script>", session="s")
    assert client.get(API).json()["messages"][0]["body"] == "<script>alert(1)</script>"


def test_api_null_client_id_is_null(client):
    Message.objects.create(nick="Ana", body="hi", session="s")
    assert client.get(API).json()["messages"][0]["client_id"] is None


# --- /api/messages: bad requests ------------------------------------------------------------


@pytest.mark.parametrize("after", ["-1", "abc", "", "1.5", " 1", "0x10", "1e3"])
def test_api_bad_after_is_400(client, after):
    assert client.get(API, {"after": after}).status_code == 400


def test_api_bad_after_gives_a_reason(client):
    assert client.get(API, {"after": "-1"}).json() == {
        "error": "bad_request",
        "detail": "'after' must be a non-negative integer.",
    }


def test_api_bad_limit_gives_a_reason(client):
    assert client.get(API, {"limit": "abc"}).json()["detail"] == (
        "'limit' must be a non-negative integer."
    )


def test_api_non_ascii_digit_after_is_400_not_500(client):
    # "²" passes str.isdigit() but int() refuses it.
    assert client.get(API, {"after": "²"}).status_code == 400


def test_api_limit_zero_is_400(client):
    assert client.get(API, {"limit": 0}).status_code == 400


def test_api_limit_zero_gives_the_range_as_reason(client):
    assert client.get(API, {"limit": 0}).json()["detail"] == "'limit' must be between 1 and 500."


def test_api_limit_over_the_cap_is_400(client):
    assert client.get(API, {"limit": 501}).status_code == 400


def test_api_limit_at_the_cap_is_accepted(client):
    assert client.get(API, {"limit": 500}).status_code == 200


def test_api_limit_over_a_configured_cap_is_400(client, settings):
    settings.CHAT_RESUME_CAP = 5
    assert client.get(API, {"after": 0, "limit": 6}).status_code == 400


def test_api_huge_limit_is_400(client):
    assert client.get(API, {"limit": "9" * 40}).status_code == 400


def test_api_negative_limit_is_400(client):
    assert client.get(API, {"limit": "-5"}).status_code == 400


def test_api_post_is_405(client):
    assert client.post(API).status_code == 405


def test_api_head_is_allowed(client):
    assert client.head(API).status_code == 200


# --- /healthz -------------------------------------------------------------------------------


def test_healthz_is_200_when_everything_answers(client):
    assert client.get("/healthz").status_code == 200


def test_healthz_reports_status_ok(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_healthz_reports_each_check(client):
    assert client.get("/healthz").json() == {
        "status": "ok",
        "database": "ok",
        "channel_layer": "ok",
        "presence": "idle",
        "layer": "in-memory",
    }


def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database_ok", broken)
    assert client.get("/healthz").status_code == 503


def test_healthz_names_the_database_when_it_fails(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database_ok", broken)
    body = client.get("/healthz").json()
    assert (body["status"], body["database"], body["channel_layer"]) == (
        "unavailable",
        "failed",
        "ok",
    )


def test_healthz_gives_the_database_failure_reason(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database_ok", broken)
    assert client.get("/healthz").json()["failed"] == {"database": "RuntimeError: database is down"}


def test_healthz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/healthz").status_code == 503


def test_healthz_names_the_channel_layer_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = client.get("/healthz").json()
    assert (body["channel_layer"], body["database"], list(body["failed"])) == (
        "failed",
        "ok",
        ["channel_layer"],
    )


def test_healthz_reports_the_redis_layer_when_redis_url_is_set(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/healthz").json()["layer"] == "redis"


def test_healthz_names_both_when_both_fail(client, settings, monkeypatch):
    def broken() -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database_ok", broken)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert sorted(client.get("/healthz").json()["failed"]) == ["channel_layer", "database"]


def test_healthz_failure_reason_is_capped_at_200_characters(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("x" * 1000)

    monkeypatch.setattr(health, "_database_ok", broken)
    assert len(client.get("/healthz").json()["failed"]["database"]) == 200


def test_healthz_returns_json(client):
    assert client.get("/healthz")["Content-Type"] == "application/json"


# --- / (the page's headers only; the page itself is tested elsewhere) -----------------------


def test_index_is_200(client):
    assert client.get("/").status_code == 200


def test_index_csp_script_src_has_no_unsafe_inline(client):
    script_src = csp_directives(client.get("/")["Content-Security-Policy"])["script-src"]
    assert "'unsafe-inline'" not in script_src


def test_index_csp_has_a_script_src(client):
    assert "script-src" in csp_directives(client.get("/")["Content-Security-Policy"])


def test_index_sets_nosniff(client):
    assert client.get("/")["X-Content-Type-Options"] == "nosniff"


def test_index_sets_a_referrer_policy(client):
    assert client.get("/").has_header("Referrer-Policy")


def test_index_forbids_framing(client):
    assert client.get("/")["X-Frame-Options"] == "DENY"


def _page_config(client) -> dict:
    html = client.get("/").content.decode()
    config = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', html)
    return json.loads(config.group(1))


def _page_strings(client) -> dict:
    return _page_config(client)["strings"]


def test_index_hands_the_close_codes_to_the_page(client):
    close = _page_config(client)["protocol"]["close"]
    assert close == {
        "policyViolation": protocol.CLOSE_POLICY_VIOLATION,
        "tooBig": protocol.CLOSE_TOO_BIG,
        "tryAgainLater": protocol.CLOSE_TRY_AGAIN_LATER,
        "serviceRestart": protocol.CLOSE_SERVICE_RESTART,
    }


def test_index_hands_every_error_code_to_the_page(client):
    errors = _page_config(client)["protocol"]["errors"]
    assert set(errors.values()) == set(protocol.ERROR_CODES)


def _typedef_keys(module: str, name: str) -> set[str]:
    """The keys of a page module's JSDoc object typedef (tsc holds the page to them)."""
    source = (ROOT / "static" / "chat" / module).read_text(encoding="utf-8")
    found = re.search(r"@typedef \{\{(.*?)\}\} " + name + r"\b", source)
    assert found, f"no typedef {name} in {module}"
    # Named keys only, not an index signature ("[name: string]").
    return set(re.findall(r"(?<![\[\w])(\w+): ", found.group(1)))


def test_index_hands_over_every_code_name_the_page_reads(client):
    # The page reads codes by these names (tsc checks it against the typedefs); a name the
    # server does not hand over would be undefined in the browser.
    codes = _page_config(client)["protocol"]
    assert _typedef_keys("connection.js", "CloseCodes") <= set(codes["close"])
    assert _typedef_keys("config.js", "ErrorCodes") <= set(codes["errors"])


def test_index_strings_explain_every_error_code(client):
    config = _page_config(client)
    assert set(config["protocol"]["errors"].values()) <= set(config["strings"]["errors"])


def test_index_offers_guests_a_sign_in_link(client):
    html = client.get("/").content.decode()
    assert 'href="/accounts/login/?next=/"' in html
    assert 'action="/accounts/logout/"' not in html


def test_index_gives_an_account_a_sign_out_form_with_a_csrf_token(client, member):
    client.force_login(member)
    html = client.get("/").content.decode()
    form = re.search(r'<form method="post" action="/accounts/logout/".*?</form>', html, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(0)
    assert "Signed in as Member" in html


def test_index_escapes_the_account_name(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="<i>x</i>", password="p"))
    html = client.get("/").content.decode()
    assert "Signed in as &lt;i&gt;x&lt;/i&gt;" in html
    assert "<i>x</i>" not in html


def test_index_strings_name_the_moderator_buttons(client):
    strings = _page_strings(client)
    assert strings["modDeleteName"] == "Delete message from %(nick)s at %(time)s"
    assert strings["mutedFor"]["other"] == "you are muted for %(count)s minutes."


def test_index_strings_are_translated_to_portuguese(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "pt-BR"
    strings = _page_strings(client)
    assert strings["modMuteName"] == "Silenciar %(nick)s por 10 minutos"
    assert strings["account"] == "conta conectada"


# --- Rate limit per address (chat.address_limits) ------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_api_past_the_rate_is_429_with_retry_after(async_client, settings):
    settings.CHAT_API_RATE = 2
    settings.CHAT_API_PERIOD = 60
    statuses = [(await async_client.get(API)).status_code for _ in range(2)]
    refused = await async_client.get(API)
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 120
    body = json.loads(refused.content)
    assert body["error"] == "rate_limited"
    assert body["retry_after"] > 0


@pytest.mark.django_db(transaction=True)
async def test_api_rate_is_per_address(async_client, settings, monkeypatch):
    settings.CHAT_API_RATE = 1
    settings.CHAT_API_PERIOD = 60
    address = "10.0.0.1"
    monkeypatch.setattr("chat.views.client_address", lambda request: address)
    assert (await async_client.get(API)).status_code == 200
    assert (await async_client.get(API)).status_code == 429
    address = "10.0.0.2"
    assert (await async_client.get(API)).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_api_rate_zero_is_no_limit(async_client, settings):
    settings.CHAT_API_RATE = 0
    for _ in range(5):
        assert (await async_client.get(API)).status_code == 200
