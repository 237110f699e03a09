"""Create the first (staff) account on a fresh installation and say how to sign in."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an 'admin' superuser when no account exists yet, and print how to sign in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("FIRST_ACCOUNT_USERNAME", "admin"))
        parser.add_argument("--url", default=f"http://localhost:{os.environ.get('PORT', '8000')}/")

    def handle(self, *args, username: str, url: str, **options) -> None:
        users = get_user_model()
        if users.objects.exists():
            self.stdout.write(f"Sign in at {url} with your existing account.")
            return
        password = os.environ.get("FIRST_ACCOUNT_PASSWORD") or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(f"Created the first account. Sign in at {url} as '{username}' with password: {password}")
        )
        self.stdout.write("(It is shown only now; change it under your name at the top right.)")
