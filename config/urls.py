from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import last_modified
from django.views.decorators.vary import vary_on_headers
from django.views.i18n import JavaScriptCatalog, set_language

from accounts.views import admin_login
from generator.ops.metrics import metrics
from generator.views.errors import api_not_found

# The scripts' translations (djangojs) change only with a deploy, that is a restart: browsers keep
# the catalogue, ask again on each page with If-Modified-Since and mostly get a 304. It is in the
# request's language (the switcher's cookie, else Accept-Language): Vary on both, and base.html adds
# ?lang= to the URL, so a cached English catalogue is never used on a Chinese page.
CATALOG_LAST_MODIFIED = timezone.now()
javascript_catalog = vary_on_headers("Accept-Language", "Cookie")(
    cache_control(no_cache=True)(
        last_modified(lambda request, **kwargs: CATALOG_LAST_MODIFIED)(JavaScriptCatalog.as_view())
    )
)


@login_not_required
@cache_control(max_age=86400)
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers ask for on pages without a <link rel=icon> (and some always):
    the app's icon. Temporary, so a new icon's hashed name is followed after a deploy."""
    return HttpResponseRedirect(static("icons/atelier.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # /healthz and /readyz are answered by generator.ops.health.HealthMiddleware, before routing.
    path("", include("generator.urls")),
    # Prometheus' scrape address: staff sessions and metrics tokens (generator/ops/metrics.py).
    path("metrics", metrics, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("usage/", include("usage.urls")),
    # Explore, publishing, likes and share links (sharing/; the SHARING switch turns them off).
    path("", include("sharing.urls")),
    # Prompt assistance: the prompt helper, style presets, variant sets (prompts/).
    path("", include("prompts.urls")),
    path("api/v1/", include("generator.api.urls")),
    # Any other /api/ address: the API's JSON 404, whatever DEBUG says.
    re_path(r"^api/(?P<path>.*)$", api_not_found, name="api_not_found"),
    # The OpenAI-compatible images API (gateway/), for chat front ends and `openai` scripts.
    path("v1/", include("gateway.urls")),
    # The admin's sign-in, counted by the same sign-in limits as /accounts/login/ (it must come
    # before admin.site.urls, which would otherwise answer this path unlimited).
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    # The language switcher works signed out too (the sign-in page has it), and so do the
    # scripts' translations (the sign-in page loads them).
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("i18n/js/", login_not_required(javascript_catalog), name="javascript_catalog"),
]

handler404 = "generator.views.errors.not_found"
handler500 = "generator.views.errors.server_error"
