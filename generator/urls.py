from django.urls import path

from .views import create, events, gallery, history, images, tags, tasks

app_name = "generator"

urlpatterns = [
    path("", create.create, name="create"),
    # one task: its page, the card the create page polls, and what can be done to it
    # the changes an open page hears of at once (server-sent events; static/js/live.js)
    path("tasks/events", events.task_events, name="task_events"),
    path("tasks/<uuid:task_id>/", tasks.task_detail, name="task_detail"),
    path("tasks/<uuid:task_id>/card", tasks.task_card, name="task_card"),
    path("tasks/<uuid:task_id>/preview", tasks.task_preview, name="task_preview"),
    path("tasks/<uuid:task_id>/cancel", tasks.task_cancel, name="task_cancel"),
    path("tasks/<uuid:task_id>/retry", tasks.task_retry, name="task_retry"),
    path("tasks/<uuid:task_id>/rerun", tasks.task_rerun, name="task_rerun"),
    path("tasks/<uuid:task_id>/delete", tasks.task_delete, name="task_delete"),
    path("history/", history.history, name="history"),
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/bulk", gallery.bulk, name="gallery_bulk"),
    path("gallery/download", gallery.download, name="gallery_download"),
    path("images/<uuid:image_id>/", images.image_detail, name="image_detail"),
    path("images/<uuid:image_id>/favorite", images.image_favorite, name="image_favorite"),
    path("images/<uuid:image_id>/tags", images.image_tag_add, name="image_tag_add"),
    path("images/<uuid:image_id>/tags/<int:tag_id>/remove", images.image_tag_remove, name="image_tag_remove"),
    path("images/<uuid:image_id>/delete", images.image_delete, name="image_delete"),
    path("tags/", tags.tag_list, name="tag_list"),
    path("tags/suggest", tags.tag_suggest, name="tag_suggest"),
    path("tags/<int:tag_id>/rename", tags.tag_rename, name="tag_rename"),
    path("tags/<int:tag_id>/delete", tags.tag_delete, name="tag_delete"),
]
