from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from django_htmx.http import HttpResponseClientRedirect


class LoginRequiredHtmxAwareMiddleware(LoginRequiredMiddleware):
    """Every view needs a signed-in user unless marked @login_not_required.

    An htmx request (a polling task card, say) whose session ended gets a full-page
    redirect to sign-in, never the sign-in page swapped into a fragment.
    """

    # An htmx client redirect is no HttpResponseRedirect; Django only returns it as the response.
    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., HttpResponseBase]
    ) -> HttpResponseBase:
        if request.headers.get("HX-Request") == "true":
            current = urlsplit(request.headers.get("HX-Current-URL") or "/")
            referer_path = current.path + (f"?{current.query}" if current.query else "")
            login = redirect_to_login(
                referer_path, self.get_login_url(view_func), self.get_redirect_field_name(view_func)
            )
            return HttpResponseClientRedirect(login["Location"])
        return super().handle_no_permission(request, view_func)
