"""WSGI entry point for gunicorn.

The app refuses to start when Django's system checks report an error (a half-configured
provider, say): gunicorn does not run them, and a server that boots anyway fails later,
per request, in ways that are harder to read. The exception names every problem, and
gunicorn stops with "Worker failed to boot" instead of restarting the worker forever.

Every request's body must arrive within WEB_BODY_SECONDS (config/body_deadline.py).
"""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from config.body_deadline import BodyDeadline

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = BodyDeadline(get_wsgi_application(), settings.WEB_BODY_SECONDS)


def refuse_to_start_on_errors() -> None:
    from django.core.checks import run_checks

    messages = run_checks(include_deployment_checks=False)
    errors = [message for message in messages if message.is_serious() and not message.is_silenced()]
    if errors:
        problems = "\n".join(f"  {message}" for message in errors)
        raise ImproperlyConfigured(f"Atelier will not start; fix the configuration first:\n{problems}")


refuse_to_start_on_errors()
