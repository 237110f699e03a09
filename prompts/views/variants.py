"""Variant sets: one idea made several ways in one submission. (To be built.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


variant_create = variant_set = variant_keep = _todo
