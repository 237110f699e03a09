"""Share links: making, listing and revoking them, and the pages anyone holding one may open.
(To be built: see urls.py for the routes.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


link_list = link_create = link_revoke = shared_page = shared_file = shared_thumbnail = _todo
