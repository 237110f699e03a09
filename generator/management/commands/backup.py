"""manage.py backup: one dated archive of the database and the media files (generator.ops.backups)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.ops.backups import BackupError, make_backup


class Command(BaseCommand):
    help = (
        "Write a consistent snapshot of the database (SQLite's online backup API, or pg_dump) and the "
        "media files into one dated archive with a manifest of checksums, while the app runs; then keep "
        "only the newest --keep archives. The BACKUP_SCHEDULE schedule runs the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: BACKUP_DIR).")
        parser.add_argument("--keep", type=int, default=None, help="Archives to keep (default: BACKUP_KEEP).")

    def handle(self, *args: object, dir: Path | None = None, keep: int | None = None, **options: object) -> None:
        try:
            result = make_backup(dir or settings.BACKUP_DIR, keep=keep if keep is not None else settings.BACKUP_KEEP)
        except BackupError as error:
            raise CommandError(str(error)) from error
        for line in result.lines():
            self.stdout.write(line)
