from django.urls import path

from .views import explore, links, publish

app_name = "sharing"
urlpatterns = [
    # Explore (signed-in people; SHARING=team or public).
    path("explore/", explore.explore, name="explore"),
    path("explore/<uuid:publication_id>/", explore.publication_detail, name="publication"),
    path("explore/<uuid:publication_id>/like", explore.toggle_like, name="like"),
    path("explore/<uuid:publication_id>/favourite", explore.toggle_favourite, name="favourite"),
    path("explore/<uuid:publication_id>/file", explore.publication_file, name="publication_file"),
    path("explore/<uuid:publication_id>/thumbnail", explore.publication_thumbnail, name="publication_thumbnail"),
    path("explore/liked/", explore.liked, name="liked"),
    path("explore/favourites/", explore.favourites, name="favourites"),
    # Publishing one's own images, and taking a published image's settings to the create page.
    path("images/<uuid:image_id>/publish", publish.publish_image, name="publish"),
    path("images/<uuid:image_id>/unpublish", publish.unpublish_image, name="unpublish"),
    path("tasks/<uuid:task_id>/publish", publish.publish_task, name="publish_task"),
    path("explore/<uuid:publication_id>/use", publish.use_settings, name="use"),
    # Share links: one's own (SHARING=public), and the pages anyone holding one may open.
    path("links/", links.link_list, name="links"),
    path("links/new", links.link_create, name="link_create"),
    path("links/<uuid:link_id>/revoke", links.link_revoke, name="link_revoke"),
    path("s/<str:token>/", links.shared_page, name="shared"),
    path("s/<str:token>/<int:position>/file", links.shared_file, name="shared_file"),
    path("s/<str:token>/<int:position>/thumbnail", links.shared_thumbnail, name="shared_thumbnail"),
]
