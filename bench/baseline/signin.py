"""The baseline's database with one person signed in (`python -m bench.baseline.signin
--database DB --out result.json`, run through bench.workers.client like the other phases).

Migrates startproject's apps into the SQLite file DB, makes a user and a stock database
session for them, and writes {"session_key": ...} for the load generator's cookie.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

USERNAME = "baseline"


def sign_in(database: str) -> str:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"
    os.environ["BASELINE_DATABASE"] = database
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user(USERNAME, password=None)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps({"session_key": sign_in(args.database)}))


if __name__ == "__main__":
    main()
