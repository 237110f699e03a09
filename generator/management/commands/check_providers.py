"""manage.py check_providers: ask each provider which models it offers (see generator.catalogue)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator import catalogue


class Command(BaseCommand):
    help = (
        "Ask each enabled provider (or the ones named) which models it offers now. A configured model "
        "it no longer offers is hidden from the create page and the API, and its tasks fail at once. "
        "The worker does the same at start-up and every hour. Exits 1 when a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("providers", nargs="*", help="Provider names (default: every enabled provider).")

    def handle(self, *args: object, providers: list[str], **options: object) -> None:
        results = catalogue.refresh(providers or None)
        if providers and len(results) < len(providers):
            known = {result.provider for result in results}
            unknown = ", ".join(name for name in providers if name not in known)
            raise CommandError(f"Not an enabled provider: {unknown}")
        for result in results:
            self.stdout.write(result.summary())
        if any(not result.reachable for result in results):
            raise CommandError("A provider failed its check.", returncode=1)
