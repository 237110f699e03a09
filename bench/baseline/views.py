"""The baseline views: a template with 48 items (like a gallery page) and a small JSON body, each
also for a signed-in person only (stock login_required: anyone else gets its redirect, which
the harness counts as an invalid run)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

ITEMS = [
    {"number": n, "title": f"a lighthouse at dawn, study {n}", "width": 1024, "height": 1024, "favorite": n % 7 == 0}
    for n in range(48)
]


def items(request: HttpRequest, number: int | None = None) -> HttpResponse:
    return render(request, "baseline/items.html", {"items": ITEMS})


SMALL_BODY = {"status": "completed", "progress": 100, "id": "00000000-0000-0000-0000-000000000000"}


signed_in_items = login_required(items)


def small_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(SMALL_BODY)


@login_required
def signed_in_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**SMALL_BODY, "user": request.user.get_username()})
