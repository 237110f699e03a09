"""manage.py cleanup: delete finished tasks older than an age, with their images and files."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.ops.maintenance import (
    FINISHED_STATUSES,
    cleanup_tasks,
    parse_age,
    parse_statuses,
    user_named,
)


class Command(BaseCommand):
    help = (
        "Delete finished tasks created longer ago than --older-than, with their images and stored "
        "files. Tasks still pending, generating or retrying are never deleted. The daily retention "
        "schedule (RETENTION_DAYS) runs the same code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Age of the tasks to delete: a whole number with d (days), h (hours) or m (minutes), e.g. 30d.",
        )
        parser.add_argument(
            "--status",
            metavar="LIST",
            help=f"Comma-separated statuses to delete (default: all finished: {','.join(FINISHED_STATUSES)}).",
        )
        parser.add_argument("--user", metavar="NAME", help="Only this person's tasks (username).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be deleted; change nothing.")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            older_than = parse_age(str(options["older_than"]))
            statuses = parse_statuses(options["status"])
            owner = user_named(str(options["user"])) if options["user"] else None
        except ValueError as error:
            raise CommandError(str(error)) from None
        report = cleanup_tasks(older_than, statuses, owner, dry_run=bool(options["dry_run"]))
        if int(options["verbosity"]) >= 2:
            for task_id in report.task_ids:
                self.stdout.write(f"{task_id} {'would be deleted' if report.dry_run else 'deleted'}")
        self.stdout.write(report.summary())
