from django.contrib import admin
from django.urls import include, path

from generator import readiness

urlpatterns = [
    path("", include("generator.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("generator.api_urls")),
    path("admin/", admin.site.urls),
    path("readyz", readiness.readyz, name="readyz"),
]

handler404 = "generator.api.not_found"
