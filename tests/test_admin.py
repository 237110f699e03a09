from __future__ import annotations

import pytest
from django.urls import reverse

from .factories import TaskFactory, UserFactory


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", ["task", "image", "tag"])
def test_admin_lists_render(staff_client, completed_task, model):
    response = staff_client.get(reverse(f"admin:generator_{model}_changelist"))
    assert response.status_code == 200


def test_admin_shows_image_thumbnails_staff_may_open(staff_client, completed_task):
    image = completed_task.images.first()
    html = staff_client.get(reverse("admin:generator_image_changelist")).content.decode()
    assert image.thumbnail_url in html
    assert staff_client.get(image.thumbnail_url).status_code == 200


def test_admin_task_page_has_images_inline(staff_client, completed_task):
    html = staff_client.get(reverse("admin:generator_task_change", args=[completed_task.pk])).content.decode()
    assert all(image.thumbnail_url in html for image in completed_task.images.all())


def test_admin_escapes_prompts(staff_client):
    TaskFactory(prompt="<img src=x onerror=alert(1)>")
    html = staff_client.get(reverse("admin:generator_task_changelist")).content.decode()
    assert "<img src=x onerror" not in html


def test_admin_search_and_filters(staff_client, completed_task):
    url = reverse("admin:generator_task_changelist")
    assert staff_client.get(url, {"q": "lighthouse", "status__exact": "completed"}).status_code == 200
