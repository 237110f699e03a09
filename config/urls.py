from django.contrib import admin
from django.urls import include, path

from generator import api

urlpatterns = [
    path("", include("generator.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("generator.api_urls")),
    path("healthz", api.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]

handler404 = "generator.api.not_found"
