from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from .factories import PASSWORD


def test_sign_in_and_out(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("generator:create")
    assert client.get(reverse("generator:create")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("generator:create")).status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_sign_up_creates_an_account_and_signs_in(client, db, settings):
    settings.SIGNUP = "open"
    response = client.post(
        reverse("signup"),
        {"username": "newcomer", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="newcomer").exists()
    assert client.get(reverse("generator:create")).status_code == 200


def test_sign_up_errors_are_shown(client, db):
    response = client.post(reverse("signup"), {"username": "x", "password1": "abc", "password2": "abd"})
    assert response.status_code == 400
    assert "The two password fields didn’t match." in response.content.decode()
    assert not get_user_model().objects.exists()


def test_sign_up_can_be_turned_off(client, db, settings):
    settings.SIGNUP = "closed"
    assert client.get(reverse("signup")).status_code == 404
    assert client.post(reverse("signup"), {"username": "a"}).status_code == 404
    assert reverse("signup") not in client.get(reverse("login")).content.decode()


def test_sign_up_is_offered_when_on(client, db):
    assert reverse("signup") in client.get(reverse("login")).content.decode()


def test_password_change(auth_client, user):
    response = auth_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "another-long-phrase", "new_password2": "another-long-phrase"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-phrase")


def test_password_change_requires_sign_in(client, db):
    assert client.get(reverse("password_change")).status_code == 302


def test_first_account_is_created_once(db, capsys):
    from django.core.management import call_command

    call_command("create_first_account")
    out = capsys.readouterr().out
    assert "as 'admin' with password: " in out
    password = out.split("password: ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    call_command("create_first_account")
    assert "existing account" in capsys.readouterr().out
    assert get_user_model().objects.count() == 1
