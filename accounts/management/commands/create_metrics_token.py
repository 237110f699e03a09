"""Make a /metrics token for a staff account and print it once (for a Prometheus server's config)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Scope
from accounts.tokens import create_token


class Command(BaseCommand):
    help = (
        "Create a token that can read /metrics and nothing else, for a staff account, and print it "
        "(only now: it is stored hashed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="A staff account; the token stops working if it loses staff status.")
        parser.add_argument("name", help="What the token is for, such as 'prometheus'.")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Default: it never expires.")

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Give the token a name of 1 to 100 characters.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no account called {username!r}.")
        if not user.is_active or not user.is_staff:
            raise CommandError(f"{username!r} is not an active staff account; only staff may read /metrics.")
        new = create_token(user, name, expires_in_days=expires_in_days, scopes=frozenset({Scope.METRICS}))
        # The token alone on stdout, so `TOKEN=$(manage.py create_metrics_token …)` works; the rest to stderr.
        self.stderr.write(f"Metrics token {name!r} for {username}: it is shown only now.")
        self.stdout.write(new.plaintext)
