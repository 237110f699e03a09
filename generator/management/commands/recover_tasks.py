"""manage.py recover_tasks: retry, fail or re-enqueue tasks whose worker or queue message was lost."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from generator.ops.recovery import recover_tasks


class Command(BaseCommand):
    help = (
        "Recover tasks whose worker died or whose queue message was lost: a task generating longer "
        "than TASK_TIMEOUT + RECOVERY_GRACE_SECONDS is retried (or failed once its attempts are used "
        "up), and a task waiting on the queue longer than REQUEUE_PENDING_AFTER_SECONDS is "
        "re-enqueued. The django-q2 schedule installed by setup_schedules runs the same code every minute."
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
            for label, ids in (
                ("retrying", report.retrying),
                ("failed", report.failed),
                ("re-enqueued", report.requeued),
            ):
                for task_id in ids:
                    self.stdout.write(f"{task_id} {label}")
        self.stdout.write(report.summary())
