"""manage.py import PATH: bring in an export folder or zip (generator.ops.portable); twice adds nothing."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import log
from audit.models import Event
from generator.ops.portable import PortableError, import_


class Command(BaseCommand):
    help = (
        "Import an export made by manage.py export (a folder or a zip), on this database. What "
        "is already here is left as it is, so importing twice adds nothing. People are matched by "
        "username; missing ones are created inactive, without a usable password. A damaged file "
        "(sha256 not the manifest's) stops the import before anything is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The export's folder or zip file.")

    def handle(self, *args: object, path: str, **options: object) -> None:
        try:
            report = import_(path)
        except (PortableError, OSError) as error:
            raise CommandError(str(error)) from error
        log.record(Event.IMPORTED, detail={"path": str(path), "added": report.added, "skipped": len(report.skipped)})
        for reason in report.skipped:
            self.stderr.write(f"skipped {reason}")
        self.stdout.write(report.summary())
