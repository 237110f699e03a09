from django.conf import settings
from django.http import HttpRequest


def signup(request: HttpRequest) -> dict:
    return {"signup_allowed": settings.ALLOW_SIGNUP}
