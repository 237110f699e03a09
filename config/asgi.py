"""ASGI entry point, what gunicorn serves (config/gunicorn.conf.py, config/asgi_server.py).

Over ASGI an open event stream (generator/views/events.py) waits on the event loop instead of
holding a thread; ordinary views run on a fixed pool of WEB_THREADS threads, as gthread ran them
(config/asgi_site.py). The app refuses to start on
configuration errors (config/startup.py), every request's body must arrive within
WEB_BODY_SECONDS (config/body_deadline.py), and a stopping server ends the open streams first.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from config.asgi_server import ON_SHUTDOWN  # noqa: E402
from config.asgi_site import SiteHandler  # noqa: E402
from config.body_deadline import AsgiBodyDeadline  # noqa: E402
from config.startup import refuse_to_start_on_errors  # noqa: E402
from gateway.asgi import with_gateway  # noqa: E402

# /v1/ (the OpenAI-compatible API) skips the middleware, so a waiting generation holds no thread.
django.setup(set_prefix=False)  # what get_asgi_application() does before its handler
application = AsgiBodyDeadline(with_gateway(SiteHandler(settings.WEB_THREADS)), settings.WEB_BODY_SECONDS)
refuse_to_start_on_errors()

from generator.live import HUB  # noqa: E402  (models: once the apps are loaded)

ON_SHUTDOWN.append(HUB.stop)
