"""The Django admin site of the chat: Django's, with its login form limited per client
address like `/accounts/login/` (chat.accounts), so that a staff password cannot be guessed
without limit at the admin's own login page.

Installed as the default admin site through `chat.admin_apps.ChatAdminConfig` (Django's documented
way to override the default site), so `admin.site` and `@admin.register` use it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext

from chat.accounts import client_address, login_limiter

logger = logging.getLogger(__name__)


class ChatAdminSite(admin.AdminSite):
    """The admin site, with a rate-limited login."""

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Refuse with 429 while the address is over the limit; count failed sign-ins."""
        if request.method != "POST":
            return super().login(request, extra_context)
        limiter = login_limiter()
        address = client_address(request)
        wait = limiter.retry_after(address)
        if wait is not None:
            logger.warning(
                "admin login refused: too many failures client=%s",
                address,
                extra={"client": address},
            )
            minutes = max(1, math.ceil(wait / 60))
            response = HttpResponse(
                gettext(
                    "Too many failed sign-in attempts from your address. "
                    "Try again in %(minutes)s minutes."
                )
                % {"minutes": minutes},
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(math.ceil(wait))
            return response
        response = super().login(request, extra_context)
        # A successful sign-in redirects; the form shown again means it failed.
        if response.status_code == 200:
            limiter.failed(address)
            logger.info("admin login failed client=%s", address, extra={"client": address})
        return response
