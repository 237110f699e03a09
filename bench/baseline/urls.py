from django.urls import path

from . import views

urlpatterns = [
    path("items/", views.items, name="items"),
    path("item/<int:number>/", views.items, name="item"),
    path("json/", views.small_json, name="json"),
    path("signed-in/items/", views.signed_in_items, name="signed_in_items"),
    path("signed-in/json/", views.signed_in_json, name="signed_in_json"),
]
