"""manage.py recover_tasks: take back tasks held by workers that stopped (see generator.scheduler.recovery)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from generator.scheduler.recovery import recover_tasks


class Command(BaseCommand):
    help = (
        "Take back tasks whose worker stopped: a task whose worker has not beaten for "
        "HEARTBEAT_TIMEOUT_SECONDS is retried (or failed once its attempts are used up), or, when "
        "its job is already at the vendor, watched again without a second submission. Then wakes a "
        "worker if anything may run. Every worker cluster does the same several times a second, "
        "and a django-q2 schedule every minute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be recovered without changing anything.",
        )

    def handle(self, *args: object, dry_run: bool = False, verbosity: int = 1, **options: object) -> None:
        report = recover_tasks(dry_run=dry_run)
        if verbosity >= 2:
            for label, ids in (("retrying", report.retrying), ("failed", report.failed), ("resumed", report.resumed)):
                for task_id in ids:
                    self.stdout.write(f"{task_id} {label}")
        self.stdout.write(report.summary())
