"""manage.py setup_schedules: create or update Atelier's django-q2 schedules (safe to run again)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from generator.ops.schedules import install_schedules


class Command(BaseCommand):
    help = (
        "Create or update Atelier's django-q2 schedules by name (the task recovery sweeper runs every "
        "minute). Idempotent: run it on every deploy; migrate runs it too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database to install the schedules in.")

    def handle(self, *args: object, database: str = DEFAULT_DB_ALIAS, **options: object) -> None:
        results = install_schedules(using=database)
        created = sorted(name for name, was_created in results.items() if was_created)
        updated = sorted(name for name, was_created in results.items() if not was_created)
        self.stdout.write(f"Schedules: {len(created)} created, {len(updated)} updated ({', '.join(sorted(results))}).")
