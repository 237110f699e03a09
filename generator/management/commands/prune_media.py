"""manage.py prune_media: stored files without a row, and rows whose files are missing."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from generator.ops.maintenance import prune_media


class Command(BaseCommand):
    help = (
        "Delete files under images/ and thumbs/ in the media storage that no image row refers to "
        "(files newer than TASK_TIMEOUT + RECOVERY_GRACE_SECONDS are left alone: a worker may still "
        "be saving their rows), and report images whose original or thumbnail file is missing. With "
        "--fix, a missing thumbnail is rebuilt from its original and an image whose original is gone "
        "is deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Repair images with missing files: rebuild thumbnails, delete images whose original is gone.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report what would be done; change nothing.")

    def handle(
        self, *args: object, fix: bool = False, dry_run: bool = False, verbosity: int = 1, **options: object
    ) -> None:
        report = prune_media(fix=fix, dry_run=dry_run)
        if verbosity >= 2:
            for name in report.orphans:
                self.stdout.write(f"orphan file {name}")
            for name in report.too_new:
                self.stdout.write(f"newer file without a row (left alone) {name}")
            for image_id in report.missing_original:
                self.stdout.write(f"image {image_id} missing its original")
            for image_id in report.missing_thumbnail:
                self.stdout.write(f"image {image_id} missing its thumbnail")
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(report.summary())
