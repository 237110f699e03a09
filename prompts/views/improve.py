"""The prompt helper on the create page ("Improve"). (To be built: see prompts/urls.py.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


improve = _todo
