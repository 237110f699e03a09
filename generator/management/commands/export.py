"""manage.py export PATH [--user NAME] [--zip]: originals and manifest.json (generator.ops.portable)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import log
from audit.models import Event
from generator.ops.maintenance import user_named
from generator.ops.portable import export


class Command(BaseCommand):
    help = (
        "Export all data, or one person's (--user), to a new folder (or a zip with --zip): the "
        "original PNGs with their embedded parameters and a versioned manifest.json of people, "
        "tasks, images, tags, favourites, presets, variant sets, publications and likes. API "
        "tokens, passwords and share links are never exported. Bring it in with manage.py import."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A new folder, or a new .zip file with --zip.")
        parser.add_argument("--user", metavar="USERNAME", help="Only this person's own data.")
        parser.add_argument("--zip", action="store_true", dest="as_zip", help="Write one zip file.")

    def handle(self, *args: object, path: str, user: str | None, as_zip: bool, **options: object) -> None:
        try:
            person = user_named(user) if user else None
            result = export(path, user=person, as_zip=as_zip)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
        log.record(Event.EXPORTED, detail={"user": user, "path": str(path), **result.counts})
        counts = result.counts
        self.stdout.write(
            f"Exported {counts['people']} people, {counts['tasks']} tasks and {counts['images']} images to {path}."
        )
        for image_id, reason in result.missing.items():
            self.stderr.write(f"image {image_id}: {reason}; its row is in the manifest without a file.")
