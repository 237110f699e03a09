from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import api, api_collections, openapi

app_name = "api"

urlpatterns = [
    path("generate", api.generate, name="generate"),
    path("task/<uuid:task_id>", api.task_detail, name="task_detail"),
    path("tasks", api_collections.task_list, name="task_list"),
    path("history", api_collections.history_list, name="history_list"),
    path("history/<uuid:task_id>", api_collections.history_delete, name="history_delete"),
    path("models", api.models, name="models"),
    path("images", api_collections.image_list, name="image_list"),
    path("images/<uuid:image_id>/tags", api_collections.image_tag_add, name="image_tag_add"),
    path("images/<uuid:image_id>/tags/<str:name>", api_collections.image_tag_remove, name="image_tag_remove"),
    path("system/info", api_collections.system_info, name="system_info"),
    path("health", login_not_required(api_collections.health), name="health"),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    path("images/<uuid:image_id>", api.image_file, name="image_file"),
    path("images/<uuid:image_id>/thumbnail", api.image_thumbnail, name="image_thumbnail"),
]
