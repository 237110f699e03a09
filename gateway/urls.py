from django.urls import path, re_path

from . import views

app_name = "gateway"

urlpatterns = [
    path("images/generations", views.generations, name="generations"),
    path("models", views.model_list, name="models"),
    path("models/<path:model_id>", views.model_detail, name="model"),
    # The signed links a `url` answer gives out (gateway.links); no session or token needed.
    path("images/files/<str:token>.png", views.image_file, name="image_file"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="not_found"),
]
