from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.account, name="account"),
    path("tokens/", views.token_create, name="api_token_create"),
    path("tokens/<uuid:token_id>/revoke/", views.token_revoke, name="api_token_revoke"),
    path("tokens/revoke-all/", views.token_revoke_all, name="api_token_revoke_all"),
    path("export/", views.export_mine, name="account_export"),
    path("login/", views.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
