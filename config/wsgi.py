"""WSGI entry point: `manage.py runserver`, the test server, and any WSGI server one prefers.

gunicorn serves config/asgi.py (event streams need it); this is the same app over WSGI, where
an open event stream holds a thread (generator/views/events.py). It refuses to start on
configuration errors (config/startup.py), and every request's body must arrive within
WEB_BODY_SECONDS (config/body_deadline.py).
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.body_deadline import BodyDeadline
from config.startup import refuse_to_start_on_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = BodyDeadline(get_wsgi_application(), settings.WEB_BODY_SECONDS)
refuse_to_start_on_errors()
