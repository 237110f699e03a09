"""manage.py generate: create a generation task as a person, optionally waiting for the images."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.forms import SIZE_RE, GenerateForm
from generator.models import Task
from generator.ops.maintenance import stored_locations, user_named, wait_for_task
from generator.services import TooManyQueuedTasks, create_task
from usage.quotas import QuotaExceeded

# Form field → the option that sets it, for error messages.
OPTIONS = {
    "prompt": "PROMPT",
    "negative_prompt": "--negative",
    "provider": "--provider",
    "model": "--model",
    "size": "--size",
    "width": "--size",
    "height": "--size",
    "num_images": "--count",
    "seed": "--seed",
}


class Command(BaseCommand):
    help = (
        "Create a generation task as the given user, validated by the same rules as the page and "
        "the API (enabled providers and models, sizes, counts, seeds, the active-task cap). With "
        "--wait, wait for it and print the stored image files, or the reason it failed (exit code 1)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prompt", help="What to draw.")
        parser.add_argument("--user", required=True, metavar="NAME", help="Username of the task's owner.")
        parser.add_argument("--provider", default="", help="Provider name (default: the first enabled one).")
        parser.add_argument("--model", default="", help="Model id (default: the provider's first model).")
        parser.add_argument("--size", default="", metavar="WxH", help="Image size, e.g. 1024x1024.")
        parser.add_argument("--count", default="", metavar="N", help="Number of images, 1–4 (default 1).")
        parser.add_argument("--seed", default="", metavar="S", help="Seed (default: random).")
        parser.add_argument("--negative", default="", metavar="TEXT", help="Negative prompt.")
        parser.add_argument("--wait", action="store_true", help="Wait until the task ends and print its files.")
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="With --wait: give up waiting after this long "
            "(default: TASK_TIMEOUT × PROVIDER_MAX_ATTEMPTS + RECOVERY_GRACE_SECONDS). The task keeps running.",
        )

    def handle(self, *args: object, **options) -> None:
        try:
            owner = user_named(options["user"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not owner.is_active:
            raise CommandError(f"The account “{options['user']}” is deactivated.")
        form = GenerateForm(data=self.form_data(options))
        if not form.is_valid():
            problems = [
                f"  {OPTIONS.get(field, 'settings')}: {message}"
                for field, messages in form.errors.items()
                for message in messages
            ]
            raise CommandError("Invalid generation settings:\n" + "\n".join(problems))
        try:
            task = create_task(owner, form.task_settings())
        except TooManyQueuedTasks as error:
            raise CommandError(str(error)) from None
        except QuotaExceeded as refused:
            raise CommandError(refused.exceeded.message) from None
        task.refresh_from_db()
        if not options["wait"]:
            self.stdout.write(
                f"Created task {task.pk} for {options['user']}: {task.provider}/{task.model} "
                f"{task.width}x{task.height} × {task.num_images}; it is {task.status}."
            )
            return
        self.wait(task, options["timeout"])

    def form_data(self, options: dict) -> dict:
        size = options["size"].strip().lower()
        if size:
            match = SIZE_RE.match(size)
            if not match:
                raise CommandError(
                    f"Invalid generation settings:\n  --size: “{options['size']}” is not WIDTHxHEIGHT, e.g. 1024x1024."
                )
            size = f"{int(match.group(1))}x{int(match.group(2))}"
        data = {
            "prompt": options["prompt"],
            "negative_prompt": options["negative"],
            "provider": options["provider"],
            "model": options["model"],
            "size": size,
            "num_images": options["count"],
            "seed": options["seed"],
        }
        if options["seed"] == "":
            data["random_seed"] = "on"
        return data

    def wait(self, task: Task, timeout: float | None) -> None:
        if timeout is None:
            timeout = settings.TASK_TIMEOUT * settings.PROVIDER_MAX_ATTEMPTS + settings.RECOVERY_GRACE_SECONDS
        try:
            ended = wait_for_task(task, timeout)
        except KeyboardInterrupt:
            raise CommandError(f"Stopped waiting; task {task.pk} keeps running ({task.status}).") from None
        if not ended:
            raise CommandError(f"Task {task.pk} is still {task.status} after {timeout:g} s; it keeps running.")
        if task.status != Task.Status.COMPLETED:
            reason = task.error_message or "It was canceled."
            code = f" ({task.error_code})" if task.error_code else ""
            raise CommandError(f"Task {task.pk} {task.status}{code}: {reason}")
        for image in task.ordered_images:
            self.stdout.write(stored_locations(image.file.name))
        self.stdout.write(f"Task {task.pk} completed with {len(task.ordered_images)} image(s).")
