"""What the tables themselves guarantee (chat.models), and that migrations match them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone

from chat.models import Sanction

pytestmark = pytest.mark.django_db


def test_migrations_match_the_models():
    out = StringIO()
    # Exits with status 1 (SystemExit) when a migration is missing.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_a_sanction_row_without_a_target_is_refused_by_the_database():
    with pytest.raises(IntegrityError):
        Sanction.objects.create(kind="mute", expires_at=timezone.now())


def test_a_sanction_row_with_two_targets_is_refused_by_the_database(member):
    with pytest.raises(IntegrityError):
        Sanction.objects.create(
            kind="ban", user=member, address="192.0.2.1", expires_at=timezone.now()
        )


def test_a_sanction_row_of_an_unknown_kind_is_refused_by_the_database():
    with pytest.raises(IntegrityError):
        Sanction.objects.create(kind="kick", session="s", expires_at=timezone.now())
