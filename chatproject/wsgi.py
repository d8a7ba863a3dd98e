"""WSGI entry point (HTTP only; the chat needs ASGI for its WebSocket)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
application = get_wsgi_application()
