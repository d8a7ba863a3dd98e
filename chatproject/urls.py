"""Top-level URLs: the chat app owns every route."""

from django.urls import include, path

urlpatterns = [
    path("", include("chat.urls")),
]
