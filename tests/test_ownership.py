"""Every route of the app, walked from the URL resolver: another person's objects are a 404
(JSON under /api/), signed-out visitors are sent to sign in (401 JSON under /api/), and
nothing of the owner's changes.

A new route fails test_every_route_is_known until ROUTES says how to fill and judge it, so
no future page or endpoint escapes the walk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.tokens import create_token
from generator.models import Image, Tag, Task
from prompts.models import Preset, VariantSet
from sharing.links import create_link
from sharing.models import ShareLink

from .factories import TagFactory, TaskFactory

# Not per-person, or not the app's own: Django's admin (staff only, its own permission
# checks), the account pages (sign-in, sign-up, password) and the probes.
# The OpenAI-compatible API (v1/) takes tokens, not sessions, and its links are signed:
# tests/test_gateway.py shows each token makes and sees only its owner's tasks and that a
# link altered to name another image, expired, or of a deleted image is refused.
SKIPPED_PREFIXES = ("admin/", "v1/")
SKIPPED_NAMES = {
    "login",
    "logout",
    "signup",
    "password_change",
    "password_change_done",
    "healthz",
    "readyz",
    "api:health",
    "api:openapi",
    "set_language",
    "javascript_catalog",
    "favicon",
    "api_not_found",  # every other /api/ address: a JSON 404 (tests/test_api_signed_out.py)
    # An endless event stream with no path parameters; tests/test_live.py shows it sends only
    # the signed-in person's own tasks and sends signed-out visitors to sign in.
    "generator:task_events",
    # Site-wide figures for staff and metrics tokens only: tests/test_metrics.py shows the 401/403s.
    "metrics",
    # sharing: links
    # Opened with the link's secret, by anyone: tests/test_sharing_links.py shows a valid link
    # opens without an account, and that a revoked, expired, unknown or malformed one, a
    # position outside the link and a deleted image are 404s.
    "sharing:shared",
    "sharing:shared_file",
    "sharing:shared_thumbnail",
    # sharing: Explore
    # A visible publication is meant to be seen by everyone signed in, so these are not owner-only:
    # tests/test_sharing_explore.py shows an unpublished, unpublished-since or hidden image is a 404
    # on each of them and that a like or favourite of one changes nothing.
    "sharing:publication",
    "sharing:like",
    "sharing:favourite",
    "sharing:publication_file",
    "sharing:publication_thumbnail",
}
# sharing: publishing
# "Use these settings" takes anyone's published image, not the visitor's own: tests/test_sharing_publish.py
# (test_use_these_settings_of_a_hidden_or_unpublished_image_is_not_found and the private-prompt test)
# shows only visible publications with their prompt shown are used.
SKIPPED_NAMES |= {"sharing:use"}
# sharing: API
# Explore's endpoints name visible publications, which everyone signed in may see and like:
# tests/test_sharing_api.py shows an unpublished or hidden image is a 404 on each of them and
# that a like or favourite of one changes nothing.
SKIPPED_NAMES |= {"api:explore_like", "api:explore_favourite", "api:explore_file", "api:explore_thumbnail"}


@dataclass(frozen=True)
class NamedValue:
    """A path parameter that is a name, not a primary key (e.g. a tag name)."""

    pk: str


@dataclass(frozen=True)
class Route:
    """How to request one route. `owned`: its path parameters name the owner's objects, so
    another person must get a 404. `lists`: a page of the visitor's own things, which must
    show nothing of the owner's. `primary`: the method the route is for."""

    primary: str = "GET"
    owned: bool = False
    lists: bool = False
    queries: tuple[str, ...] = ("",)
    # What the owner gets for the walked objects: 404 where they have nothing to show (the
    # preview of a task that is not generating; tests/test_progress.py checks the owner's 200).
    owner_gets: int = 200


ROUTES: dict[str, Route] = {
    "generator:create": Route(lists=True),
    "generator:task_detail": Route(owned=True),
    "generator:task_card": Route(owned=True),
    "generator:task_preview": Route(owned=True, owner_gets=404),
    "generator:task_cancel": Route(primary="POST", owned=True),
    "generator:gallery": Route(lists=True, queries=("", "?q=lighthouse", "?favorites=1")),
    "generator:gallery_bulk": Route(primary="POST"),
    "generator:gallery_download": Route(primary="POST"),
    "generator:history": Route(lists=True, queries=("", "?q=lighthouse", "?status=pending")),
    "generator:task_retry": Route(primary="POST", owned=True),
    "generator:task_rerun": Route(primary="POST", owned=True),
    "generator:task_delete": Route(primary="POST", owned=True),
    "generator:image_detail": Route(owned=True),
    "generator:image_favorite": Route(primary="POST", owned=True),
    "generator:image_tag_add": Route(primary="POST", owned=True),
    "api_token_revoke_all": Route(primary="POST"),
    "generator:image_tag_remove": Route(primary="POST", owned=True),
    "generator:image_delete": Route(primary="POST", owned=True),
    "generator:tag_list": Route(lists=True),
    "generator:tag_suggest": Route(lists=True, queries=("", "?q=li")),
    "generator:tag_rename": Route(primary="POST", owned=True),
    "generator:tag_delete": Route(primary="POST", owned=True),
    "api:generate": Route(primary="POST"),
    "api:task_detail": Route(owned=True),
    "api:task_cancel": Route(primary="POST", owned=True),
    "api:models": Route(),
    "api:task_list": Route(lists=True, queries=("", "?status=pending", "?q=lighthouse")),
    "api:history_list": Route(lists=True),
    "api:history_delete": Route(primary="DELETE", owned=True),
    "api:image_list": Route(lists=True, queries=("", "?tag=lighthouses", "?favorite=true")),
    "api:image_tag_add": Route(primary="POST", owned=True),
    "api:image_tag_remove": Route(primary="DELETE", owned=True),
    "api:system_info": Route(),
    "account": Route(lists=True),
    "api_token_create": Route(primary="POST"),
    "api_token_revoke": Route(primary="POST", owned=True),
    "api:image_file": Route(owned=True, queries=("", "?download=1")),
    "api:image_thumbnail": Route(owned=True),
    "usage:usage": Route(lists=True),
    # sharing: links
    "sharing:links": Route(lists=True),
    "sharing:link_create": Route(),
    "sharing:link_revoke": Route(primary="POST", owned=True),
    # sharing: Explore
    "sharing:explore": Route(lists=True, queries=("", "?sort=liked", "?sort=popular&q=lighthouse")),
    "sharing:liked": Route(lists=True),
    "sharing:favourites": Route(lists=True),
}
# sharing: publishing
ROUTES |= {
    "sharing:publish": Route(primary="POST", owned=True),
    "sharing:unpublish": Route(primary="POST", owned=True),
    "sharing:publish_task": Route(primary="POST", owned=True),
}
# sharing: API
ROUTES |= {
    "api:image_publish": Route(primary="POST", owned=True),
    "api:explore": Route(lists=True, queries=("", "?sort=liked", "?sort=popular&q=lighthouse")),
    "api:share_links": Route(lists=True),
    "api:share_link_revoke": Route(primary="DELETE", owned=True),
}

# prompts: presets
# A person's own presets: another person's are a 404 on each (staff presets: tests/test_presets.py).
ROUTES |= {
    "prompts:presets": Route(lists=True),
    "prompts:preset_create": Route(),
    "prompts:preset_edit": Route(owned=True),
    "prompts:preset_delete": Route(primary="POST", owned=True),
    "prompts:preset_card": Route(owned=True),
    "api:preset_list": Route(lists=True),
    "api:preset_preview": Route(owned=True),
}

# prompts: variants
ROUTES |= {
    "prompts:variant_create": Route(primary="POST"),
    "prompts:variant_set": Route(owned=True),
    "prompts:variant_keep": Route(primary="POST", owned=True),
    "api:variant_create": Route(primary="POST"),
    "api:variant_detail": Route(owned=True),
    "api:variant_keep": Route(primary="POST", owned=True),
}

# prompts: helper
ROUTES |= {
    "prompts:improve": Route(primary="POST"),
}

# audit/export: export
# "Download my data" streams the visitor's own export: the walk checks another person's zip
# shows nothing of the owner's (tests/test_export_import.py checks what it does hold).
ROUTES |= {
    "account_export": Route(primary="POST"),
}

# Path parameter name -> which of the owner's objects fill it.
PARAMETERS = {
    "task_id": ("pending_task", "completed_task"),
    "image_id": ("image", "second_image"),
    "tag_id": ("tag", "second_tag"),
    "name": ("tag_name", "second_tag_name"),
    "token_id": ("token", "second_token"),
    # sharing: links
    "link_id": ("link", "second_link"),
    # prompts: presets
    "preset_id": ("preset", "second_preset"),
    # prompts: variants (variant_keep's task_id is the task in that set: pending, then completed)
    "set_id": ("variant_set", "second_variant_set"),
}


@dataclass
class Walked:
    name: str
    route: str
    parameters: list[str] = field(default_factory=list)


def walk(patterns=None, prefix: str = "", namespace: str = "") -> list[Walked]:
    """Every URL pattern under the root URLconf, with its full route and namespaced name."""
    found: list[Walked] = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += walk(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else route
            found.append(Walked(name, route, sorted(entry.pattern.converters)))
    return found


def app_routes() -> list[Walked]:
    return [
        walked
        for walked in walk()
        if not walked.route.startswith(SKIPPED_PREFIXES) and walked.name not in SKIPPED_NAMES
    ]


def spec_for(walked: Walked) -> Route:
    if walked.name not in ROUTES:
        pytest.fail(f"Add {walked.name} ({walked.route}) to ROUTES in tests/test_ownership.py", pytrace=False)
    return ROUTES[walked.name]


def test_every_route_is_known():
    unknown = [f"{w.name} ({w.route})" for w in app_routes() if w.name not in ROUTES]
    unfillable = [f"{w.name}: {p}" for w in app_routes() for p in w.parameters if p not in PARAMETERS]
    assert not unknown, f"Add these routes to ROUTES in tests/test_ownership.py: {unknown}"
    assert not unfillable, f"Add these path parameters to PARAMETERS in tests/test_ownership.py: {unfillable}"
    assert {w.name for w in app_routes()} >= {"generator:task_detail", "api:task_detail", "api:image_file"}


@pytest.fixture(autouse=True)
def public_sharing(settings):
    """Share links (sharing:links…) exist only with SHARING=public: walk them for real."""
    settings.SHARING = "public"


@pytest.fixture
def owned(user, completed_task) -> dict:
    """The first person's objects: a completed task with two stored images, a pending task."""
    images = list(completed_task.ordered_images)
    tag, second_tag = TagFactory(owner=user, name="lighthouses"), TagFactory(owner=user, name="tidepools")
    images[0].tags.add(tag, second_tag)
    pending_task = TaskFactory(owner=user, prompt="a pending lighthouse, not to be canceled")
    # prompts: variants (each set holds the task the walk pairs it with in variant_keep)
    variant_set = VariantSet.objects.create(owner=user, mode=VariantSet.Mode.PRESETS, prompt="a lighthouse")
    second_variant_set = VariantSet.objects.create(owner=user, mode=VariantSet.Mode.REWRITES, prompt="a tidepool")
    Task.objects.filter(pk=pending_task.pk).update(variant_set=variant_set)
    Task.objects.filter(pk=completed_task.pk).update(variant_set=second_variant_set)
    return {
        "completed_task": completed_task,
        "pending_task": pending_task,
        "image": images[0],
        "second_image": images[1],
        "tag": tag,
        "second_tag": second_tag,
        "token": create_token(user, "lighthouse script").token,
        "second_token": create_token(user, "tidepool script").token,
        "tag_name": NamedValue(tag.name),
        "second_tag_name": NamedValue(second_tag.name),
        # sharing: links
        "link": create_link(user, images, title="lighthouse album", expires_in_days=None).link,
        "second_link": create_link(user, images[:1], title="tidepool picture", expires_in_days=None).link,
        # prompts: presets
        "preset": Preset.objects.create(
            owner=user, name="lighthouse style", prompt_template="{prompt}, foggy", preview=images[1]
        ),
        "second_preset": Preset.objects.create(owner=user, name="tidepool style", preview=images[0]),
        # prompts: variants
        "variant_set": variant_set,
        "second_variant_set": second_variant_set,
    }


def snapshot(user) -> dict:
    """What must not change: each task's state and each image's row and stored bytes."""
    tasks = {
        task.pk: (task.status, task.progress, task.prompt, task.finished_at, task.error_code)
        for task in Task.objects.filter(owner=user)
    }
    images = {}
    for image in Image.objects.filter(owner=user):
        original, thumbnail = Path(image.file.path), Path(image.thumbnail.path)
        assert original.is_file() and thumbnail.is_file(), f"image {image.pk} lost a file"
        tags = sorted(image.tags.values_list("name", flat=True))
        images[image.pk] = (image.task_id, image.is_favorite, tags, original.read_bytes(), thumbnail.read_bytes())
    return {
        "tasks": tasks,
        "images": images,
        "tags": sorted(Tag.objects.filter(owner=user).values_list("name", flat=True)),
        "share_links": sorted(ShareLink.objects.filter(owner=user).values_list("pk", "revoked_at", "title")),
        "presets": sorted(Preset.objects.filter(owner=user).values_list("pk", "name", "prompt_template", "preview")),
    }


def missing_id(parameter: str) -> object:
    """An id of the right type that names nothing."""
    if parameter in ("tag_id", "preset_id", "set_id"):
        return 2_000_000_000 + uuid.uuid4().int % 1000
    return f"no-such-tag-{uuid.uuid4().hex[:8]}" if parameter == "name" else uuid.uuid4()


def urls_for(walked: Walked, objects: dict | None) -> list[str]:
    """The route's URL filled with each of the owner's objects (or random ids when None)."""
    spec = spec_for(walked)
    if not walked.parameters:
        return [reverse(walked.name) + query for query in spec.queries]
    urls = []
    for index in range(2):
        kwargs = {
            parameter: (objects[PARAMETERS[parameter][index]].pk if objects else missing_id(parameter))
            for parameter in walked.parameters
        }
        urls += [reverse(walked.name, kwargs=kwargs) + query for query in spec.queries]
    return urls


METHODS = ("GET", "POST", "DELETE")


def request(client, method: str, url: str, **headers):
    return getattr(client, method.lower())(url, **headers)


def test_another_person_gets_404_for_everything_of_mine(user, owned, other_client):
    before = snapshot(user)
    problems = []
    for walked in app_routes():
        spec = spec_for(walked)
        if not spec.owned:
            continue
        missing = {method: request(other_client, method, urls_for(walked, None)[0]).status_code for method in METHODS}
        assert missing[spec.primary] == 404, f"{walked.name}: a missing object should be 404, got {missing}"
        for url in urls_for(walked, owned):
            for method in METHODS:
                response = request(other_client, method, url)
                # 404 for the method the route is for; any other method answers exactly as it
                # does for an object that does not exist (a 405, say), so nothing is revealed.
                if response.status_code != missing[method]:
                    problems.append(
                        f"{method} {url}: {response.status_code}, not {missing[method]} as for a missing id"
                    )
                if url.startswith("/api/") and response.get("Content-Type") != "application/json":
                    problems.append(f"{method} {url}: {response.get('Content-Type')} instead of JSON")
                elif (
                    url.startswith("/api/")
                    and response.status_code == 404
                    and response.json().get("error") != "not_found"
                ):
                    problems.append(f"{method} {url}: {response.content[:200]!r}")
    assert not problems, "\n".join(problems)
    assert snapshot(user) == before


def test_the_walk_reaches_the_owners_objects(user, owned, auth_client, other_client):
    """The filled URLs are the owner's real objects: the owner gets them (so the 404s above
    are the ownership check, not a wrong URL)."""
    for walked in app_routes():
        spec = spec_for(walked)
        if not spec.owned or spec.primary != "GET":
            continue
        for url in urls_for(walked, owned):
            response = auth_client.get(url)
            assert response.status_code == spec.owner_gets, f"GET {url} as the owner: {response.status_code}"
    # The unsafe one last: the owner may cancel the pending task; the other person could not.
    pending = owned["pending_task"]
    assert other_client.post(reverse("generator:task_cancel", args=[pending.pk])).status_code == 404
    assert Task.objects.get(pk=pending.pk).status == Task.Status.PENDING
    assert auth_client.post(reverse("generator:task_cancel", args=[pending.pk])).status_code == 302
    assert Task.objects.get(pk=pending.pk).status == Task.Status.CANCELED


def test_list_pages_and_the_api_show_another_person_nothing_of_mine(user, owned, other_client):
    before = snapshot(user)
    mine = [str(owned[key].pk) for key in ("completed_task", "pending_task", "image", "second_image")]
    mine += [owned["tag"].name, owned["second_tag"].name]
    mine += [owned["completed_task"].prompt, owned["pending_task"].prompt]
    mine += [owned["preset"].name, owned["second_preset"].name]  # prompts: presets
    for walked in app_routes():
        spec = spec_for(walked)
        if spec.owned or walked.parameters:
            continue
        for url in urls_for(walked, None):
            for method in METHODS:
                response = request(other_client, method, url)
                assert response.status_code < 500, f"{method} {url}: {response.status_code}"
                body = b"".join(response.streaming_content) if response.streaming else response.content
                leaked = [value for value in mine if value in body.decode(errors="replace")]
                assert not leaked, f"{method} {url} shows another person {leaked}"
                if url.startswith("/api/"):
                    assert response["Content-Type"] == "application/json", f"{method} {url}"
    assert snapshot(user) == before
    assert Task.objects.filter(owner=user).count() == 2


def test_signed_out_visitors_are_sent_to_sign_in_or_get_401(user, owned, client):
    before = snapshot(user)
    login = reverse("login")
    problems = []
    for walked in app_routes():
        for url in urls_for(walked, owned if walked.parameters else None):
            for method, headers in (("GET", {}), ("POST", {}), ("DELETE", {}), ("GET", {"HTTP_HX_REQUEST": "true"})):
                response = request(client, method, url, **headers)
                if url.startswith("/api/"):
                    ok = response.status_code == 401 and response.json().get("error") == "not_authenticated"
                elif headers:  # htmx: a whole-page redirect, never the sign-in page in a fragment
                    ok = response.status_code == 200 and response.get("HX-Redirect", "").startswith(login)
                else:
                    ok = response.status_code == 302 and response["Location"].startswith(login)
                if not ok:
                    problems.append(
                        f"{method} {url} {headers or ''}: {response.status_code} {response.content[:120]!r}"
                    )
    assert not problems, "\n".join(problems)
    assert snapshot(user) == before
    assert Task.objects.filter(owner=user).count() == 2
