from django.urls import path

from .views import create, gallery, history, images

app_name = "generator"

urlpatterns = [
    # create page and the task card it polls
    path("", create.create, name="create"),
    path("tasks/<uuid:task_id>/", create.task_detail, name="task_detail"),
    path("tasks/<uuid:task_id>/card", create.task_card, name="task_card"),
    path("tasks/<uuid:task_id>/cancel", create.task_cancel, name="task_cancel"),
    # history
    path("history/", history.history, name="history"),
    path("tasks/<uuid:task_id>/retry", history.task_retry, name="task_retry"),
    path("tasks/<uuid:task_id>/delete", history.task_delete, name="task_delete"),
    # gallery
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/bulk", gallery.bulk, name="gallery_bulk"),
    path("gallery/download", gallery.download, name="gallery_download"),
    # one image, and tags
    path("images/<uuid:image_id>/", images.image_detail, name="image_detail"),
    path("images/<uuid:image_id>/favorite", images.image_favorite, name="image_favorite"),
    path("images/<uuid:image_id>/tags", images.image_tag_add, name="image_tag_add"),
    path("images/<uuid:image_id>/tags/<int:tag_id>/remove", images.image_tag_remove, name="image_tag_remove"),
    path("images/<uuid:image_id>/delete", images.image_delete, name="image_delete"),
    path("tags/", images.tag_list, name="tag_list"),
    path("tags/suggest", images.tag_suggest, name="tag_suggest"),
    path("tags/<int:tag_id>/rename", images.tag_rename, name="tag_rename"),
    path("tags/<int:tag_id>/delete", images.tag_delete, name="tag_delete"),
]
