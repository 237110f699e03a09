"""The baseline views: a template with 48 items (like a gallery page) and a small JSON body, each\nalso for a signed-in person only."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

ITEMS = [
    {"number": n, "title": f"a lighthouse at dawn, study {n}", "width": 1024, "height": 1024, "favorite": n % 7 == 0}
    for n in range(48)
]


def items(request: HttpRequest, number: int | None = None) -> HttpResponse:
    return render(request, "baseline/items.html", {"items": ITEMS})


SMALL_BODY = {"status": "completed", "progress": 100, "id": "00000000-0000-0000-0000-000000000000"}


def signed_in_items(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not signed in"}, status=403)
    return render(request, "baseline/items.html", {"items": ITEMS})


def small_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(SMALL_BODY)


def signed_in_json(request: HttpRequest) -> JsonResponse:
    # Stock Django's least work for a signed-in person: the session and the user, both read.
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not signed in"}, status=403)
    return JsonResponse({**SMALL_BODY, "user": request.user.get_username()})
