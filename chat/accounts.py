"""Sign-in for moderators: Django's login view, limited per client address.

Failed sign-ins are counted per address in the cache (Redis when REDIS_URL is set, so all
workers share the count; otherwise this process's memory): past CHAT_LOGIN_ATTEMPTS
failures in a window of CHAT_LOGIN_PERIOD seconds, further attempts from that address are
refused with 429 and a form error, without checking the password. The window is fixed (it
starts on a multiple of the period), so a patient attacker gets at most twice the limit
across a window boundary.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

# Used when the shared cache fails (Redis down): the limit still holds, per process.
_fallback = LocMemCache("chat-login-fallback", {"MAX_ENTRIES": 10000})


def client_address(request: HttpRequest) -> str:
    """The client's address (daphne's --proxy-headers puts the forwarded one here)."""
    return request.META.get("REMOTE_ADDR") or "-"


class LoginLimiter:
    """Counts failed sign-ins per address in fixed windows of `period` seconds."""

    def __init__(self, *, attempts: int, period: int, clock: Any = time.time) -> None:
        self.attempts = attempts
        self.period = period
        self.clock = clock

    def _key(self, address: str) -> tuple[str, float]:
        now = self.clock()
        window = math.floor(now / self.period)
        return f"chat:login-failures:{address}:{window}", (window + 1) * self.period - now

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again; None when it may try now."""
        if not self.attempts or not self.period:
            return None
        key, left = self._key(address)
        failures = self._call(lambda store: store.get(key, 0))
        return left if failures >= self.attempts else None

    def failed(self, address: str) -> None:
        """Count one failed sign-in from `address`."""
        if not self.attempts or not self.period:
            return
        key, _ = self._key(address)

        def count(store: BaseCache) -> int:
            store.add(key, 0, timeout=self.period + 1)
            return store.incr(key)

        self._call(count)

    @staticmethod
    def _call(operation: Any) -> Any:
        try:
            return operation(cache)
        except Exception as exc:
            logger.warning("login limiter: cache unavailable (%r); counting in memory", exc)
            return operation(_fallback)


def login_limiter() -> LoginLimiter:
    """The limiter configured by CHAT_LOGIN_ATTEMPTS and CHAT_LOGIN_PERIOD."""
    return LoginLimiter(attempts=settings.CHAT_LOGIN_ATTEMPTS, period=settings.CHAT_LOGIN_PERIOD)


class RateLimitedLoginView(LoginView):
    """Django's LoginView (CSRF-protected), refusing an address after too many failures."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Refuse with 429 while the address is over the limit; count a failure otherwise."""
        limiter = login_limiter()
        address = client_address(request)
        wait = limiter.retry_after(address)
        if wait is not None:
            logger.warning(
                "login refused: too many failures client=%s", address, extra={"client": address}
            )
            form = self.get_form()
            minutes = max(1, math.ceil(wait / 60))
            form.add_error(
                None,
                gettext(
                    "Too many failed sign-in attempts from your address. "
                    "Try again in %(minutes)s minutes."
                )
                % {"minutes": minutes},
            )
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(math.ceil(wait))
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        """Count the failure against the client's address."""
        address = client_address(self.request)
        login_limiter().failed(address)
        logger.info("login failed client=%s", address, extra={"client": address})
        return super().form_invalid(form)
