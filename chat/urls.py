"""HTTP routes of the chat."""

from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/messages", views.messages_api, name="messages"),
    # /healthz is readiness, as before; a Kubernetes probe example is in the README.
    path("healthz", views.healthz_ready, name="healthz"),
    path("healthz/ready", views.healthz_ready, name="healthz-ready"),
    path("healthz/live", views.healthz_live, name="healthz-live"),
    path("metrics", views.metrics_view, name="metrics"),
]
