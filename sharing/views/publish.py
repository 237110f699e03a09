"""Publishing and unpublishing one's own images, and "Use these settings" from Explore.
(To be built: see urls.py for the routes.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


publish_image = publish_task = unpublish_image = use_settings = _todo
