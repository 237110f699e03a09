from django.urls import path

from prompts.views import api as presets_api
from prompts.views import variants_api
from sharing import api as sharing

from ..ops import health
from ..views import files
from . import openapi, views

app_name = "api"

urlpatterns = [
    path("generate", views.generate, name="generate"),
    path("task/<uuid:task_id>", views.task_detail, name="task_detail"),
    path("task/<uuid:task_id>/cancel", views.task_cancel, name="task_cancel"),
    path("tasks", views.task_list, name="task_list"),
    path("history", views.history_list, name="history_list"),
    path("history/<uuid:task_id>", views.history_delete, name="history_delete"),
    path("models", views.models, name="models"),
    path("images", views.image_list, name="image_list"),
    path("images/<uuid:image_id>/tags", views.image_tag_add, name="image_tag_add"),
    path("images/<uuid:image_id>/tags/<path:name>", views.image_tag_remove, name="image_tag_remove"),
    # Variant sets (prompts/): several sibling tasks from one submission, and keeping one.
    path("variants", variants_api.variant_create, name="variant_create"),
    path("variants/<int:set_id>", variants_api.variant_detail, name="variant_detail"),
    path("variants/<int:set_id>/keep", variants_api.variant_keep, name="variant_keep"),
    path("system/info", views.system_info, name="system_info"),
    path("presets", presets_api.preset_list, name="preset_list"),
    path("presets/<int:preset_id>/preview", presets_api.preset_preview, name="preset_preview"),
    path("health", health.api_health, name="health"),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    # Sharing (sharing.api; each a 404 unless the SHARING switch allows it).
    path("images/<uuid:image_id>/publish", sharing.image_publish, name="image_publish"),
    path("explore", sharing.explore, name="explore"),
    path("explore/<uuid:publication_id>/like", sharing.explore_like, name="explore_like"),
    path("explore/<uuid:publication_id>/favourite", sharing.explore_favourite, name="explore_favourite"),
    path("explore/<uuid:publication_id>/file", sharing.explore_file, name="explore_file"),
    path("explore/<uuid:publication_id>/thumbnail", sharing.explore_thumbnail, name="explore_thumbnail"),
    path("share-links", sharing.share_links, name="share_links"),
    path("share-links/<uuid:link_id>", sharing.share_link_revoke, name="share_link_revoke"),
    # The files themselves, for scripts and for every <img> on the pages (owner-checked).
    path("images/<uuid:image_id>", files.image_file, name="image_file"),
    path("images/<uuid:image_id>/thumbnail", files.image_thumbnail, name="image_thumbnail"),
]
