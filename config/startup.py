"""What both entry points (config/asgi.py for gunicorn, config/wsgi.py) do before serving.

The app refuses to start when Django's system checks report an error (a half-configured
provider, say): gunicorn does not run them, and a server that boots anyway fails later,
per request, in ways that are harder to read. The exception names every problem, and
gunicorn stops with "Worker failed to boot" instead of restarting the worker forever.
"""

from __future__ import annotations

from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured


def refuse_to_start_on_errors() -> None:
    messages = run_checks(include_deployment_checks=False)
    errors = [message for message in messages if message.is_serious() and not message.is_silenced()]
    if errors:
        problems = "\n".join(f"  {message}" for message in errors)
        raise ImproperlyConfigured(f"Atelier will not start; fix the configuration first:\n{problems}")
