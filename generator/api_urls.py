from django.urls import path

from . import api

app_name = "api"

urlpatterns = [
    path("generate", api.generate, name="generate"),
    path("task/<uuid:task_id>", api.task_detail, name="task_detail"),
    path("models", api.models, name="models"),
    path("images/<uuid:image_id>", api.image_file, name="image_file"),
    path("images/<uuid:image_id>/thumbnail", api.image_thumbnail, name="image_thumbnail"),
]
