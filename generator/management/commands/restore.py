"""manage.py restore ARCHIVE: an archive from `manage.py backup` into an empty installation."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.ops.backups import BackupError, restore_backup


class Command(BaseCommand):
    help = (
        "Restore an archive made by `manage.py backup`: checks every checksum first, then replaces the "
        "database and the media files. Refuses an installation that has users, tasks or media files "
        "unless --force (which wipes it first). Stop the web and worker processes while it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="The .tar.gz archive to restore.")
        parser.add_argument(
            "--force", action="store_true", help="Wipe a non-empty installation's database and media first."
        )

    def handle(self, *args: object, archive: Path, force: bool = False, **options: object) -> None:
        try:
            result = restore_backup(archive, force=force)
        except BackupError as error:
            raise CommandError(str(error)) from error
        for line in result.lines():
            self.stdout.write(line)
