"""Moderators' sign-in (chat.accounts): the page, CSRF, the per-address limit, the first
moderator from `createsuperuser --noinput`."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from chat.accounts import LoginLimiter
from chat.selectors import can_moderate

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def limit(settings):
    settings.CHAT_LOGIN_ATTEMPTS = 3
    settings.CHAT_LOGIN_PERIOD = 300
    return 3


def bad(client: Client, **extra: str):
    return client.post(LOGIN, {"username": "mod", "password": "wrong"}, **extra)


# --- the page ------------------------------------------------------------------------------


def test_the_login_page_renders():
    response = Client().get(LOGIN)
    assert response.status_code == 200


def test_the_login_page_uses_the_chat_template():
    response = Client().get(LOGIN)
    assert "registration/login.html" in [t.name for t in response.templates]
    assert "base.html" in [t.name for t in response.templates]


def test_the_login_page_has_a_csrf_token():
    assert "csrfmiddlewaretoken" in Client().get(LOGIN).content.decode()


def test_the_login_page_has_no_inline_script_or_style():
    html = Client().get(LOGIN).content.decode()
    assert "<script" not in html and "<style" not in html and "style=" not in html


def test_the_login_page_sends_the_csp_header():
    assert "script-src 'self'" in Client().get(LOGIN)["Content-Security-Policy"]


def test_a_good_login_goes_to_the_chat(moderator):
    response = Client().post(LOGIN, {"username": "mod", "password": "mod-password-1"})
    assert (response.status_code, response["Location"]) == (302, "/")


def test_a_bad_login_shows_the_form_again(moderator):
    response = bad(Client())
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


def test_a_login_without_the_csrf_token_is_refused(moderator):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN, {"username": "mod", "password": "mod-password-1"})
    assert response.status_code == 403


def test_a_login_with_the_csrf_token_is_accepted(moderator):
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN)
    token = client.cookies["csrftoken"].value
    response = client.post(
        LOGIN, {"username": "mod", "password": "mod-password-1", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_the_other_auth_views_are_under_accounts():
    assert Client().get("/accounts/password_reset/").status_code == 200


# --- the limit -----------------------------------------------------------------------------


def test_attempts_up_to_the_limit_are_answered(moderator, limit):
    client = Client()
    assert [bad(client).status_code for _ in range(limit)] == [200] * limit


def test_past_the_limit_the_login_answers_429(moderator, limit):
    client = Client()
    for _ in range(limit):
        bad(client)
    assert bad(client).status_code == 429


def test_the_refusal_says_why(moderator, limit):
    client = Client()
    for _ in range(limit):
        bad(client)
    assert "Too many failed sign-in attempts" in bad(client).content.decode()


def test_the_refusal_says_when_to_retry(moderator, limit):
    client = Client()
    for _ in range(limit):
        bad(client)
    assert 0 < int(bad(client)["Retry-After"]) <= 300


def test_past_the_limit_even_the_right_password_is_refused(moderator, limit):
    client = Client()
    for _ in range(limit):
        bad(client)
    response = client.post(LOGIN, {"username": "mod", "password": "mod-password-1"})
    assert response.status_code == 429


def test_the_limit_is_per_address(moderator, limit):
    for _ in range(limit):
        bad(Client(), REMOTE_ADDR="192.0.2.1")
    assert bad(Client(), REMOTE_ADDR="192.0.2.2").status_code == 200


def test_good_logins_do_not_count(moderator, limit):
    for _ in range(limit + 1):
        Client().post(LOGIN, {"username": "mod", "password": "mod-password-1"})
    assert bad(Client()).status_code == 200


def test_the_limit_ends_with_its_period():
    now = [1000.0]
    limiter = LoginLimiter(attempts=2, period=60, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    now[0] += 60
    assert limiter.retry_after("a") is None


def test_a_limit_of_zero_switches_it_off():
    limiter = LoginLimiter(attempts=0, period=60)
    for _ in range(50):
        limiter.failed("a")
    assert limiter.retry_after("a") is None


def test_the_limit_holds_when_the_cache_fails(monkeypatch):
    class Broken:
        def __getattr__(self, name):
            raise ConnectionError("redis down")

    monkeypatch.setattr("chat.accounts.cache", Broken())
    limiter = LoginLimiter(attempts=2, period=60, clock=lambda: 5.0)
    limiter.failed("198.51.100.9")
    limiter.failed("198.51.100.9")
    assert limiter.retry_after("198.51.100.9") == 55.0


# --- the first moderator -------------------------------------------------------------------


def test_createsuperuser_noinput_makes_a_moderator(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "first")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "first@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-password-1")
    call_command("createsuperuser", "--noinput", verbosity=0)
    user = django_user_model.objects.get(username="first")
    assert can_moderate(user) and user.check_password("first-password-1")


def test_the_first_moderator_can_sign_in(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "first")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "first@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-password-1")
    call_command("createsuperuser", "--noinput", verbosity=0)
    response = Client().post(LOGIN, {"username": "first", "password": "first-password-1"})
    assert response.status_code == 302


def test_the_admin_login_is_limited_per_address_too(client, moderator, settings):
    settings.CHAT_LOGIN_ATTEMPTS = 3
    url = f"/{settings.ADMIN_URL}login/"
    for _ in range(3):
        assert client.post(url, {"username": "mod", "password": "wrong"}).status_code == 200
    refused = client.post(url, {"username": "mod", "password": "mod-password-1"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0


def test_the_admin_login_still_signs_in_under_the_limit(client, moderator):
    response = client.post(
        f"/{django_settings.ADMIN_URL}login/", {"username": "mod", "password": "mod-password-1"}
    )
    assert response.status_code == 302
