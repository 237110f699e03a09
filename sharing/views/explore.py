"""Explore: everyone's published images, their likes, favourites, views and downloads.
(To be built: see urls.py for the routes.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


explore = publication_detail = toggle_like = toggle_favourite = _todo
publication_file = publication_thumbnail = liked = favourites = _todo
