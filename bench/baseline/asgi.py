"""The baseline over ASGI, served as the app's pages are (config/asgi.py: SiteHandler, sync views
on a pool of WEB_THREADS threads), so that wrk compares the views and not two ASGI handlers."""

import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline.settings"
django.setup(set_prefix=False)

from config.asgi_site import SiteHandler  # noqa: E402

application = SiteHandler(int(os.environ.get("WEB_THREADS", "8")))
