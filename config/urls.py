from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("generator.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("generator.api_urls")),
    path("admin/", admin.site.urls),
]

handler404 = "generator.api.not_found"
