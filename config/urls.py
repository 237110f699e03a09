from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from generator import readiness

urlpatterns = [
    path("", include("generator.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("generator.api_urls")),
    path("admin/", admin.site.urls),
    path("readyz", readiness.readyz, name="readyz"),
    # The language switcher works signed out too (the sign-in page has it).
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
]

handler404 = "generator.api.not_found"
