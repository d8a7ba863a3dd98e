"""django.contrib.admin's app config with the chat's admin site as the default site (Django's
documented way to override it; a module of its own, as Django requires of app configs)."""

from django.contrib.admin.apps import AdminConfig


class ChatAdminConfig(AdminConfig):
    """django.contrib.admin, with the chat's site (a rate-limited login) as the default."""

    default_site = "chat.admin_site.ChatAdminSite"
