"""Style presets: the Presets page (one's own) and the picker's preview. (To be built.)"""

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, **kwargs: object) -> HttpResponse:
    raise Http404


preset_list = preset_create = preset_edit = preset_delete = preset_card = _todo
