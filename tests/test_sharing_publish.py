"""Publishing from the studio (the viewer, the task page, the gallery's bar), what the author
sees of their published images, and "Use these settings" from Explore.

Publications are made with sharing.publishing.publish(), as the views make them."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generator.models import Image, Task
from sharing.models import Like, Publication
from sharing.publishing import publish, unpublish

from .factories import ImageFactory, TaskFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
FROM_MODAL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "image-modal"}
GALLERY = reverse("generator:gallery")
BULK = reverse("generator:gallery_bulk")
CREATE = reverse("generator:create")


@pytest.fixture(autouse=True)
def team_sharing(settings):
    settings.SHARING = "team"


@pytest.fixture
def image(completed_task) -> Image:
    return completed_task.ordered_images[0]


def publish_url(image: Image) -> str:
    return reverse("sharing:publish", args=[image.pk])


def unpublish_url(image: Image) -> str:
    return reverse("sharing:unpublish", args=[image.pk])


def hide(publication: Publication, reason: str = "") -> None:
    Publication.objects.filter(pk=publication.pk).update(hidden_at=timezone.now(), hidden_reason=reason)


def page_of(client, url: str, **headers) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


# --- publish, change, unpublish ---------------------------------------------------------------


def test_publishing_from_the_viewer_swaps_the_panel_in_place(auth_client, image):
    assert 'id="publish-panel"' in page_of(auth_client, image.detail_url, **FROM_MODAL)

    response = auth_client.post(publish_url(image), {"title": "  Harbour at dawn ", "show_prompt": "on"}, **HTMX)

    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    assert "Unpublish" in fragment and reverse("sharing:publication", args=[image.publication.pk]) in fragment
    publication = Publication.objects.get(image=image)
    assert publication.owner == image.owner and publication.title == "Harbour at dawn"
    assert (publication.show_prompt, publication.prompt) == (True, image.task.prompt)
    assert (publication.provider, publication.model) == (image.task.provider, image.task.model)


def test_publishing_without_javascript_goes_back_to_the_image_with_a_message(auth_client, image):
    response = auth_client.post(publish_url(image), {"title": "Harbour", "show_prompt": "on"}, follow=True)

    assert response.redirect_chain == [(image.detail_url, 302)]
    assert "Published: everyone signed in can see it on Explore." in response.content.decode()
    assert Publication.objects.filter(image=image, title="Harbour").exists()


def test_the_publish_page_without_javascript_shows_the_form_ticked(auth_client, image):
    page = page_of(auth_client, publish_url(image))
    assert 'name="title"' in page and 'name="show_prompt" value="on" checked' in page
    assert not Publication.objects.exists()  # a GET publishes nothing


def test_an_unticked_prompt_box_keeps_the_prompt_off_the_publication(auth_client, image):
    auth_client.post(publish_url(image), {"title": "Mine"}, **HTMX)
    publication = Publication.objects.get(image=image)
    assert (publication.show_prompt, publication.prompt) == (False, "")
    assert publication.model == image.task.model  # the model still shows: Explore filters on it


def test_republishing_changes_the_choices_and_keeps_counts_date_and_staff_hiding(auth_client, image, other_user):
    first = publish(image, title="Old", show_prompt=False)
    Like.objects.create(publication=first, user=other_user)
    Publication.objects.filter(pk=first.pk).update(like_count=1, view_count=7, download_count=2)
    hide(first, "off topic")

    auth_client.post(publish_url(image), {"title": "New", "show_prompt": "on"}, **HTMX)

    again = Publication.objects.get(image=image)
    assert again.pk == first.pk and again.published_at == first.published_at
    assert (again.title, again.show_prompt, again.prompt) == ("New", True, image.task.prompt)
    assert (again.like_count, again.view_count, again.download_count) == (1, 7, 2)
    assert again.is_hidden and again.hidden_reason == "off topic"
    assert Like.objects.filter(publication=again).count() == 1


@pytest.mark.parametrize("headers, status", [(HTMX, 200), ({}, 400)])
def test_a_title_too_long_is_a_form_error_and_changes_nothing(auth_client, image, headers, status):
    response = auth_client.post(publish_url(image), {"title": "x" * 121, "show_prompt": "on"}, **headers)
    assert response.status_code == status
    assert "Keep the title to 120 characters or fewer." in response.content.decode()
    assert not Publication.objects.exists()

    publish(image, title="Kept", show_prompt=False)
    auth_client.post(publish_url(image), {"title": "y" * 121, "show_prompt": "on"}, **headers)
    publication = Publication.objects.get(image=image)
    assert (publication.title, publication.show_prompt) == ("Kept", False)


def test_a_title_of_exactly_120_characters_is_kept(auth_client, image):
    auth_client.post(publish_url(image), {"title": "t" * 120}, **HTMX)
    assert Publication.objects.get(image=image).title == "t" * 120


def test_unpublishing_takes_the_image_off_explore_with_its_likes(auth_client, image, other_user):
    publication = publish(image, title="Harbour")
    Like.objects.create(publication=publication, user=other_user)
    used = TaskFactory(owner=other_user, from_publication=publication)

    response = auth_client.post(unpublish_url(image), **HTMX)

    assert response.status_code == 200
    assert "Publish to Explore" in response.content.decode()
    assert not Publication.objects.exists() and not Like.objects.exists()
    assert Image.objects.filter(pk=image.pk).exists()  # the image stays in the gallery
    used.refresh_from_db()
    assert used.from_publication is None  # the task someone made from it stays, without the link


def test_unpublishing_without_javascript_goes_back(auth_client, image):
    publish(image)
    response = auth_client.post(unpublish_url(image))
    assert response.status_code == 302 and response["Location"] == image.detail_url
    assert not Publication.objects.exists()
    assert auth_client.get(unpublish_url(image)).status_code == 405


def test_deleting_the_image_removes_its_publication(auth_client, completed_task):
    first, second = completed_task.ordered_images
    publish(first)
    publish(second)

    auth_client.post(reverse("generator:image_delete", args=[first.pk]))
    assert list(Publication.objects.values_list("image_id", flat=True)) == [second.pk]

    auth_client.post(reverse("generator:task_delete", args=[completed_task.pk]), {"confirm": "yes"})
    assert not Task.objects.filter(pk=completed_task.pk).exists()
    assert not Publication.objects.exists()


# --- another person ---------------------------------------------------------------------------


def test_another_person_cannot_publish_change_or_unpublish_my_image(other_client, image):
    for method in ("get", "post"):
        response = getattr(other_client, method)(publish_url(image), {"title": "Stolen", "show_prompt": "on"})
        assert response.status_code == 404
    assert not Publication.objects.exists()

    publish(image, title="Mine", show_prompt=False)
    assert other_client.post(publish_url(image), {"title": "Stolen", "show_prompt": "on"}, **HTMX).status_code == 404
    assert other_client.post(unpublish_url(image), **HTMX).status_code == 404
    publication = Publication.objects.get(image=image)
    assert (publication.title, publication.show_prompt, publication.prompt) == ("Mine", False, "")


def test_another_person_cannot_publish_my_task(other_client, completed_task):
    url = reverse("sharing:publish_task", args=[completed_task.pk])
    assert other_client.get(url).status_code == 404
    assert other_client.post(url, {"title": "Stolen", "show_prompt": "on"}).status_code == 404
    assert not Publication.objects.exists()


def test_bulk_publishing_another_persons_image_changes_nothing(auth_client, image, other_user):
    theirs = ImageFactory(task__owner=other_user)
    response = auth_client.post(BULK, {"action": "publish", "image": [str(image.pk), str(theirs.pk)]})
    assert response.status_code == 404
    assert not Publication.objects.exists()


# --- a whole task -----------------------------------------------------------------------------


def test_the_task_page_offers_publish_all(auth_client, completed_task):
    page = page_of(auth_client, completed_task.get_absolute_url())
    assert reverse("sharing:publish_task", args=[completed_task.pk]) in page


def test_publish_all_publishes_every_image_of_the_task(auth_client, completed_task):
    url = reverse("sharing:publish_task", args=[completed_task.pk])
    assert "Publish all" in page_of(auth_client, url)

    response = auth_client.post(url, {"title": "Two harbours", "show_prompt": "on"}, follow=True)

    assert response.redirect_chain == [(completed_task.get_absolute_url(), 302)]
    assert "Published 2 images on Explore." in response.content.decode()
    published = Publication.objects.filter(image__task=completed_task)
    assert sorted(published.values_list("title", "prompt")) == [("Two harbours", completed_task.prompt)] * 2


def test_publish_all_of_a_task_without_images_says_so_and_publishes_nothing(auth_client, user):
    pending = TaskFactory(owner=user)
    response = auth_client.post(reverse("sharing:publish_task", args=[pending.pk]), {"title": "Nothing"})
    assert response.status_code == 400
    assert "This task has no images to publish." in response.content.decode()
    assert not Publication.objects.exists()


def test_publish_all_with_a_title_too_long_publishes_nothing(auth_client, completed_task):
    url = reverse("sharing:publish_task", args=[completed_task.pk])
    response = auth_client.post(url, {"title": "x" * 121, "show_prompt": "on"})
    assert response.status_code == 400 and "Keep the title to 120 characters or fewer." in response.content.decode()
    assert not Publication.objects.exists()


# --- what the author sees ---------------------------------------------------------------------


def test_the_author_sees_the_counts_and_the_link_to_explore_in_the_viewer(auth_client, image):
    publication = publish(image, title="Harbour")
    Publication.objects.filter(pk=publication.pk).update(
        like_count=3, favourite_count=2, view_count=41, download_count=5
    )
    panel = page_of(auth_client, image.detail_url, **FROM_MODAL)
    for name, value in (("likes", 3), ("favourites", 2), ("views", 41), ("downloads", 5)):
        assert f'data-count="{name}">{value}<' in panel
    assert reverse("sharing:publication", args=[publication.pk]) in panel
    assert "Hidden by staff" not in panel


def test_the_author_sees_that_staff_hid_it_and_still_has_it_in_the_gallery(auth_client, image):
    publication = publish(image)
    hide(publication, "Not for the team page")

    page = page_of(auth_client, image.detail_url)
    assert "Hidden by staff: Not for the team page" in page
    assert reverse("sharing:publication", args=[publication.pk]) not in page  # no dead link
    assert str(image.pk) in page_of(auth_client, GALLERY)


def test_the_gallery_marks_my_published_tiles_with_their_likes(auth_client, completed_task):
    first, second = completed_task.ordered_images
    publication = publish(first)
    Publication.objects.filter(pk=publication.pk).update(like_count=4)

    page = page_of(auth_client, GALLERY)
    tile_of = {image.pk: page.split(f'id="image-{image.pk}"')[1].split("</li>")[0] for image in (first, second)}
    assert "gallery-published" in tile_of[first.pk] and "♥ 4" in tile_of[first.pk]
    assert "gallery-published" not in tile_of[second.pk]


def count_queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url, **headers).status_code == 200
    return len(context)


def test_published_tiles_cost_no_extra_query(auth_client, user):
    images = ImageFactory.bulk_create_batch(10, owner=user)
    page_of(auth_client, GALLERY)  # the filter choices are cached from the first visit on
    before = count_queries(auth_client, GALLERY), count_queries(auth_client, GALLERY, **HTMX)
    for image in images[::2]:
        publish(Image.objects.select_related("task").get(pk=image.pk))
    after = count_queries(auth_client, GALLERY), count_queries(auth_client, GALLERY, **HTMX)
    assert after == before
    assert page_of(auth_client, GALLERY).count('class="gallery-published') == 5


def test_bulk_publish_publishes_the_selection_and_keeps_earlier_choices(auth_client, completed_task):
    first, second = completed_task.ordered_images
    publish(first, title="Chosen", show_prompt=False)

    response = auth_client.post(BULK, {"action": "publish", "image": [str(first.pk), str(second.pk)]}, **HTMX)

    assert response.status_code == 200
    answer = response.content.decode()
    assert "2 images are published on Explore." in answer
    assert answer.count('hx-swap-oob="true"') >= 2 and "gallery-published" in answer
    by_image = {p.image_id: p for p in Publication.objects.all()}
    assert (by_image[first.pk].title, by_image[first.pk].show_prompt) == ("Chosen", False)
    assert (by_image[second.pk].title, by_image[second.pk].show_prompt) == ("", True)


def test_bulk_publish_without_javascript_comes_back_with_a_message(auth_client, image):
    response = auth_client.post(BULK, {"action": "publish", "image": [str(image.pk)]}, follow=True)
    assert "1 image is published on Explore." in response.content.decode()
    assert Publication.objects.filter(image=image).exists()


# --- share links are offered only when SHARING=public ------------------------------------------


def test_share_link_is_offered_only_with_public_sharing(auth_client, image, settings):
    link = f"{reverse('sharing:link_create')}?image={image.pk}"
    viewer, gallery = page_of(auth_client, image.detail_url), page_of(auth_client, GALLERY)
    assert link not in viewer and 'value="share"' not in gallery
    assert 'value="publish"' in gallery

    settings.SHARING = "public"
    assert link in page_of(auth_client, image.detail_url)
    assert 'value="share"' in page_of(auth_client, GALLERY)


def test_the_bulk_share_button_opens_the_link_form_for_the_selection(auth_client, completed_task, settings):
    settings.SHARING = "public"
    first, second = completed_task.ordered_images
    response = auth_client.post(BULK, {"action": "share", "image": [str(first.pk), str(second.pk)]})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("sharing:link_create")
    assert sorted(parse_qs(location.query)["image"]) == sorted([str(first.pk), str(second.pk)])

    settings.SHARING = "team"
    refused = auth_client.post(BULK, {"action": "share", "image": [str(first.pk)]})
    assert refused.status_code == 400


def test_the_bulk_share_button_refuses_another_persons_image(auth_client, image, other_user, settings):
    settings.SHARING = "public"
    theirs = ImageFactory(task__owner=other_user)
    response = auth_client.post(BULK, {"action": "share", "image": [str(image.pk), str(theirs.pk)]})
    assert response.status_code == 404


# --- "Use these settings" -----------------------------------------------------------------------


@pytest.fixture
def theirs(other_user) -> Publication:
    """Another person's published image, with its prompt shown."""
    task = TaskFactory(
        owner=other_user, prompt="A red kite over the moor", negative_prompt="fog", steps=20, guidance_scale=5.5
    )
    from generator.scheduler.inline import run_task

    run_task(str(task.pk))
    task.refresh_from_db()
    return publish(task.ordered_images[0], title="Kite")


def use(client, publication: Publication):
    return client.get(reverse("sharing:use", args=[publication.pk]))


def submitted(form_initial: dict, **changes: object) -> dict:
    fields = {key: value for key, value in form_initial.items() if key != "random_seed"}
    return {**fields, **changes}


def test_use_these_settings_fills_the_create_form_and_the_new_task_remembers_it(auth_client, user, theirs):
    response = use(auth_client, theirs)
    assert response.status_code == 302
    href = urlsplit(response["Location"])
    assert href.path == CREATE and parse_qs(href.query) == {"publication": [str(theirs.pk)]}  # no prompt in it

    create_page = auth_client.get(response["Location"])
    initial = create_page.context["form"].initial
    source = theirs.image
    assert initial["prompt"] == "A red kite over the moor" and initial["negative_prompt"] == "fog"
    assert (initial["steps"], initial["scale"], initial["seed"]) == (20, 5.5, source.seed)
    assert initial["model"] == f"{source.task.provider}:{source.task.model}"
    page = create_page.content.decode()
    assert f'name="from_publication" value="{theirs.pk}"' in page
    assert "Settings from “Kite” by" in page

    assert auth_client.post(CREATE, submitted(initial, from_publication=str(theirs.pk))).status_code == 302
    made = Task.objects.get(owner=user)
    assert made.from_publication == theirs and made.prompt == "A red kite over the moor"


def test_the_result_says_where_its_settings_came_from(auth_client, user, theirs):
    made = TaskFactory(owner=user, from_publication=theirs)
    run_task_now(made)
    page = page_of(auth_client, made.get_absolute_url())
    assert "Settings from" in page and reverse("sharing:publication", args=[theirs.pk]) in page
    assert f"“Kite” by {html.escape(theirs.owner.get_username())}" in page
    viewer = page_of(auth_client, made.ordered_images[0].detail_url, **FROM_MODAL)
    assert reverse("sharing:publication", args=[theirs.pk]) in viewer


def run_task_now(task: Task) -> None:
    from generator.scheduler.inline import run_task

    run_task(str(task.pk))
    task.refresh_from_db()


@pytest.mark.parametrize("change", ["unpublish", "hide", "private", "altered"])
def test_a_submission_still_makes_its_task_when_the_publication_changed_meanwhile(auth_client, user, theirs, change):
    initial = auth_client.get(use(auth_client, theirs)["Location"]).context["form"].initial
    sent_id = str(theirs.pk)
    if change == "unpublish":
        unpublish(theirs.image)
    elif change == "hide":
        hide(theirs)
    elif change == "private":
        publish(theirs.image, show_prompt=False)
    else:
        sent_id = "not-an-id"

    response = auth_client.post(CREATE, submitted(initial, from_publication=sent_id))

    assert response.status_code == 302
    made = Task.objects.get(owner=user)
    assert made.from_publication is None and made.prompt == "A red kite over the moor"


def test_use_these_settings_of_a_hidden_or_unpublished_image_is_not_found(auth_client, theirs):
    hide(theirs)
    assert use(auth_client, theirs).status_code == 404
    Publication.objects.filter(pk=theirs.pk).update(hidden_at=None)
    gone = Publication.objects.get(pk=theirs.pk)
    unpublish(theirs.image)
    assert use(auth_client, gone).status_code == 404


def test_use_these_settings_of_a_private_prompt_says_so_and_fills_nothing(auth_client, theirs):
    publish(theirs.image, show_prompt=False)
    response = use(auth_client, theirs)
    assert response.status_code == 302
    assert response["Location"] == reverse("sharing:publication", args=[theirs.pk])
    create_page = auth_client.get(CREATE, {"publication": str(theirs.pk)})
    assert "red kite" not in create_page.content.decode()
    assert "from_publication" not in create_page.context["form"].initial


# --- SHARING=off -------------------------------------------------------------------------------


def test_with_sharing_off_every_publishing_route_is_not_found(auth_client, completed_task, theirs, settings):
    image = completed_task.ordered_images[0]
    publish(image)
    settings.SHARING = "off"
    urls = [
        publish_url(image),
        unpublish_url(image),
        reverse("sharing:publish_task", args=[completed_task.pk]),
        reverse("sharing:use", args=[theirs.pk]),
    ]
    for url in urls:
        for method in ("get", "post"):
            assert getattr(auth_client, method)(url, {"title": "x"}).status_code == 404, (method, url)
    assert Publication.objects.filter(image=image).exists()
    assert 'id="publish-panel"' not in page_of(auth_client, image.detail_url)
    assert "gallery-published" not in page_of(auth_client, GALLERY)
    refused = auth_client.post(BULK, {"action": "publish", "image": [str(completed_task.ordered_images[1].pk)]})
    assert refused.status_code == 302  # back to the gallery with "Publishing is turned off on this site."
    assert Publication.objects.count() == 2  # mine and theirs: the bulk action published nothing
    initial = auth_client.get(CREATE, {"publication": str(theirs.pk)}).context["form"].initial
    assert "from_publication" not in initial


def test_after_an_htmx_submission_the_form_forgets_the_publication(auth_client, user, theirs):
    """The create form made from "Use these settings" marks its first task only: the htmx answer
    deletes the form's from_publication field and note (out of band), so the next task from the
    same page is the person's own."""
    initial = auth_client.get(use(auth_client, theirs)["Location"]).context["form"].initial
    page = auth_client.get(CREATE, {"publication": str(theirs.pk)}).content.decode()
    assert '<div id="from-publication"><input type="hidden" name="from_publication"' in page

    first = auth_client.post(CREATE, submitted(initial, from_publication=str(theirs.pk)), HTTP_HX_REQUEST="true")
    assert first.status_code == 201
    assert '<div id="from-publication" hx-swap-oob="delete"></div>' in first.content.decode()
    # What the page then sends: the same fields without from_publication (a new token).
    own = {key: value for key, value in submitted(initial, prompt="A kite, again").items() if key != "from_publication"}
    second = auth_client.post(CREATE, own, HTTP_HX_REQUEST="true")
    assert second.status_code == 201
    assert "from-publication" not in second.content.decode()  # nothing to delete: no htmx error
    made = {task.prompt: task.from_publication for task in Task.objects.filter(owner=user)}
    assert made == {"A red kite over the moor": theirs, "A kite, again": None}
