from django.conf import settings
from django.http import HttpRequest


def signup(request: HttpRequest) -> dict:
    # Offered by link unless closed; with approval the page says an administrator must approve.
    return {"signup_allowed": settings.SIGNUP != "closed", "signup_needs_approval": settings.SIGNUP == "approval"}
