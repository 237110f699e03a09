"""manage.py rebuild_thumbnails: make the WebP thumbnails again from the stored originals."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from generator.ops.maintenance import rebuild_thumbnails


class Command(BaseCommand):
    help = (
        "Regenerate every image's WebP thumbnail (THUMBNAIL_SIZE) from its original, e.g. after "
        "changing THUMBNAIL_SIZE or losing thumbnails. An original that is missing or unreadable "
        "is reported and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--missing-only", action="store_true", help="Only images whose thumbnail file is missing.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be rebuilt; change nothing.")

    def handle(
        self, *args: object, missing_only: bool = False, dry_run: bool = False, verbosity: int = 1, **options: object
    ) -> None:
        report = rebuild_thumbnails(missing_only=missing_only, dry_run=dry_run)
        for image_id, reason in report.failed:
            self.stderr.write(f"image {image_id}: {reason}")
        if verbosity >= 2:
            for image_id in report.rebuilt:
                self.stdout.write(f"image {image_id} {'would be rebuilt' if dry_run else 'rebuilt'}")
        self.stdout.write(report.summary())
