"""Top-level URLs: the chat, moderators' sign-in (/accounts/) and the admin (DJANGO_ADMIN_URL)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from chat.accounts import RateLimitedLoginView

urlpatterns = [
    # Before Django's auth URLs, so that sign-in is rate limited.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("", include("chat.urls")),
]
