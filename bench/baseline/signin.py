"""The baseline's database with one person signed in: `python -m bench.baseline.signin DB`.

Migrates startproject's apps into the SQLite file DB, makes a user and a stock database
session for them, and prints {"session_key": ...} for the load generator's cookie.
"""

from __future__ import annotations

import json
import os
import sys

USERNAME = "baseline"


def main(database: str) -> None:
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
    print(json.dumps({"session_key": session.session_key}))


if __name__ == "__main__":
    main(sys.argv[1])
