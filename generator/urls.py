from django.urls import path

from . import views

app_name = "generator"

urlpatterns = [
    path("", views.create, name="create"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="task_detail"),
    path("tasks/<uuid:task_id>/card", views.task_card, name="task_card"),
    path("tasks/<uuid:task_id>/cancel", views.task_cancel, name="task_cancel"),
    path("gallery/", views.gallery, name="gallery"),
    path("history/", views.history, name="history"),
]
