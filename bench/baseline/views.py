"""The two baseline views: a template with 48 items (like a gallery page) and a small JSON body."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

ITEMS = [
    {"number": n, "title": f"a lighthouse at dawn, study {n}", "width": 1024, "height": 1024, "favorite": n % 7 == 0}
    for n in range(48)
]


def items(request: HttpRequest, number: int | None = None) -> HttpResponse:
    return render(request, "baseline/items.html", {"items": ITEMS})


def small_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "completed", "progress": 100, "id": "00000000-0000-0000-0000-000000000000"})
