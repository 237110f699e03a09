"""manage.py export / import and "Download my data" (generator.ops.portable).

An export is a folder or zip of the original PNGs and manifest.json. Importing it gives every
person the same gallery, tags, favourites and history; twice adds nothing; a damaged file
stops it before anything is written. The last test moves a SQLite installation to PostgreSQL
with the README's commands, each in its own process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEntry, Event
from generator.models import Image, Tag, Task
from prompts.models import Preset, VariantSet
from sharing.models import Favourite, Like, Publication

from .factories import FinishedTaskFactory, TagFactory, UserFactory
from .security import servers

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgres://postgres@127.0.0.1:5432"


def seed() -> None:
    """Two people with a bit of everything, and a staff preset (also run in a subprocess)."""
    alice, bob = UserFactory(username="alice", email="alice@example.com"), UserFactory(username="bob")
    lighthouse = FinishedTaskFactory(owner=alice, num_images=2, prompt="a lighthouse at dusk", seed=7)
    Task.objects.filter(pk=lighthouse.pk).update(cost=Decimal("0.0800"), cost_currency="USD")
    first, second = lighthouse.images.order_by("index")
    first.tags.add(TagFactory(owner=alice, name="lighthouses"), TagFactory(owner=alice, name="Dusk"))
    TagFactory(owner=alice, name="unused")
    Image.objects.filter(pk=second.pk).update(is_favorite=True)
    FinishedTaskFactory(owner=alice, prompt="a storm", status=Task.Status.FAILED, error_code="provider_error")
    foggy = Preset.objects.create(owner=alice, name="foggy", prompt_template="{prompt}, foggy", preview=first)
    Preset.objects.create(owner=None, name="Ink and wash", prompt_template="{prompt}, ink and wash")
    variants = VariantSet.objects.create(owner=alice, mode=VariantSet.Mode.PRESETS, prompt="a harbour")
    kept = FinishedTaskFactory(owner=alice, prompt="a harbour, foggy", preset=foggy, preset_name="foggy")
    Task.objects.filter(pk=kept.pk).update(variant_set=variants, original_prompt="a harbour")
    variants.keep(kept)
    tidepool = FinishedTaskFactory(owner=bob, num_images=1, prompt="a tidepool")
    bobs = tidepool.images.get()
    bobs.tags.add(TagFactory(owner=bob, name="tidepools"))
    alices_pub = Publication.objects.create(image=first, owner=alice, provider="p", model="m", title="Dusk")
    bobs_pub = Publication.objects.create(image=bobs, owner=bob, provider="p", model="m", prompt="a tidepool")
    Like.objects.create(user=bob, publication=alices_pub)
    Favourite.objects.create(user=bob, publication=alices_pub)
    Like.objects.create(user=alice, publication=bobs_pub)
    Publication.objects.filter(pk=alices_pub.pk).update(like_count=1, favourite_count=1)
    Publication.objects.filter(pk=bobs_pub.pk).update(like_count=1)
    FinishedTaskFactory(owner=bob, prompt="reused settings", from_publication=alices_pub)


def gallery() -> dict:
    """What each person sees, by username, in plain JSON values (compared across processes)."""

    def when(moment) -> str | None:
        return moment.isoformat() if moment else None

    def checksum(name: str) -> str:
        with default_storage.open(name, "rb") as stored:
            return hashlib.sha256(stored.read()).hexdigest()

    people = {}
    for person in get_user_model().objects.order_by("username"):
        tasks = Task.objects.filter(owner=person).select_related("preset", "variant_set", "from_publication")
        images = Image.objects.filter(owner=person).prefetch_related("tags")
        people[person.username] = {
            "tasks": sorted(
                [
                    str(t.pk),
                    t.prompt,
                    t.status,
                    t.provider,
                    t.model,
                    t.seed,
                    t.error_code,
                    when(t.created_at),
                    when(t.finished_at),
                    str(t.cost),
                    t.cost_currency,
                    t.original_prompt,
                    t.preset_name,
                    t.preset.name if t.preset else None,
                    t.variant_set.prompt if t.variant_set else None,
                    str(t.from_publication.image_id) if t.from_publication else None,
                ]
                for t in tasks
            ),
            "images": sorted(
                [
                    str(i.pk),
                    str(i.task_id),
                    i.index,
                    checksum(i.file.name),
                    i.width,
                    i.height,
                    i.seed,
                    sorted(tag.name for tag in i.tags.all()),
                    i.is_favorite,
                    when(i.created_at),
                    default_storage.exists(i.thumbnail.name),
                ]
                for i in images
            ),
            "tags": sorted(Tag.objects.filter(owner=person).values_list("name", flat=True)),
            "presets": sorted(
                [p.name, p.prompt_template, str(p.preview_id)] for p in Preset.objects.filter(owner=person)
            ),
            "variant_sets": sorted(
                [v.prompt, v.mode, when(v.created_at), str(v.kept_id)] for v in VariantSet.objects.filter(owner=person)
            ),
            "publications": sorted(
                [str(p.pk), str(p.image_id), p.title, p.prompt, p.like_count, p.favourite_count]
                for p in Publication.objects.filter(owner=person)
            ),
            "likes": sorted(str(pk) for pk in Like.objects.filter(user=person).values_list("publication", flat=True)),
            "favourites": sorted(
                str(pk) for pk in Favourite.objects.filter(user=person).values_list("publication", flat=True)
            ),
        }
    people[""] = {"staff presets": sorted(Preset.objects.filter(owner=None).values_list("name", flat=True))}
    return people


def counts() -> dict[str, int]:
    models = (get_user_model(), Task, Image, Tag, Image.tags.through, Preset, VariantSet, Publication, Like, Favourite)
    return {model._meta.label: model.objects.count() for model in models}


def media_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in Path(root).rglob("*") if path.is_file())


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def manifest_of(path: Path) -> dict:
    if path.is_dir():
        return json.loads((path / "manifest.json").read_text())
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def empty_installation(settings, tmp_path: Path) -> Path:
    """Nobody and nothing in the database, and a new, empty media folder."""
    get_user_model().objects.all().delete()
    Preset.objects.all().delete()
    assert not any(counts().values())
    settings.MEDIA_ROOT = tmp_path / "new-media"
    return settings.MEDIA_ROOT


@pytest.fixture
def seeded(db):
    seed()
    return gallery()


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_everything_exported_comes_back_the_same_on_an_empty_installation(seeded, settings, tmp_path, as_zip):
    target = tmp_path / ("export.zip" if as_zip else "export")
    out = run("export", str(target), *(["--zip"] if as_zip else []))
    assert "Exported 2 people, 5 tasks and 5 images" in out
    media = empty_installation(settings, tmp_path)

    out = run("import", str(target))

    assert "5 images" in out
    assert gallery() == seeded
    # The people it made cannot sign in until someone lets them: inactive, no usable password.
    for person in get_user_model().objects.all():
        assert not person.is_active and not person.has_usable_password()
    before, files = counts(), media_files(media)
    assert len(files) == 10  # five originals and their thumbnails, made again from the originals

    again = run("import", str(target))

    assert counts() == before
    assert media_files(media) == files
    assert again.startswith("Imported nothing;")
    assert gallery() == seeded


def test_importing_leaves_what_is_already_there_as_it_is(seeded, tmp_path):
    run("export", str(tmp_path / "export"))
    Tag.objects.filter(name="lighthouses").update(name="Lighthouses at night")
    get_user_model().objects.filter(username="alice").update(email="new@example.com")
    before = counts()

    run("import", str(tmp_path / "export"))

    assert Tag.objects.filter(name="Lighthouses at night").exists()
    # The export's tag is not on this installation any more: it comes back, on no image of its own.
    assert counts()[Tag._meta.label] == before[Tag._meta.label] + 1
    assert get_user_model().objects.get(username="alice").email == "new@example.com"
    assert get_user_model().objects.get(username="alice").is_active


def test_a_persons_export_holds_only_their_data(seeded, tmp_path):
    run("export", str(tmp_path / "alice"), "--user", "alice")
    manifest = manifest_of(tmp_path / "alice")
    text = (tmp_path / "alice" / "manifest.json").read_text()

    alice = get_user_model().objects.get(username="alice")
    theirs = {str(pk) for pk in Image.objects.filter(owner=alice).values_list("pk", flat=True)}
    assert [person["username"] for person in manifest["people"]] == ["alice"]
    assert {task["owner"] for task in manifest["tasks"]} == {"alice"}
    assert {image["id"] for image in manifest["images"]} == theirs
    assert {path.stem for path in (tmp_path / "alice" / "originals").iterdir()} == theirs
    assert {tag["name"] for tag in manifest["tags"]} == {"lighthouses", "Dusk", "unused"}
    assert [preset["name"] for preset in manifest["presets"]] == ["foggy"]  # not staff's Ink and wash
    # Bob's tasks, tags and name are nowhere; his like of her picture is his, so it stays out too.
    assert "bob" not in text and "tidepool" not in text and "Ink and wash" not in text
    assert [like["user"] for like in manifest["likes"]] == ["alice"]
    assert manifest["publication_favourites"] == []
    # Never tokens or passwords.
    assert "password" not in text and "token" not in text


def test_a_persons_export_comes_back_on_another_installation(seeded, settings, tmp_path):
    run("export", str(tmp_path / "alice.zip"), "--user", "alice", "--zip")
    empty_installation(settings, tmp_path)

    run("import", str(tmp_path / "alice.zip"))

    now = gallery()
    assert list(now) == ["alice", ""]
    expected = {**seeded["alice"], "likes": []}  # she liked bob's picture, which is not here
    # Bob's like and favourite of her picture were his: here it has none.
    expected["publications"] = [[*pub[:4], 0, 0] for pub in seeded["alice"]["publications"]]
    assert now["alice"] == expected


def test_a_damaged_file_stops_the_import_before_anything_is_written(seeded, settings, tmp_path):
    run("export", str(tmp_path / "export"))
    damaged = sorted((tmp_path / "export" / "originals").iterdir())[1]
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    media = empty_installation(settings, tmp_path)

    with pytest.raises(CommandError, match=r"damaged.*sha256") as refusal:
        run("import", str(tmp_path / "export"))

    assert f"image {damaged.stem}" in str(refusal.value)
    assert not any(counts().values())
    assert media_files(media) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(version=2), "version 2"),
        (lambda m: m.update(format="something"), "not an Atelier export"),
        (lambda m: m["images"][0].update(task=str(uuid.uuid4())), "images whose task"),
        (lambda m: m["tasks"][0].update(created_at="yesterday"), "created_at"),
        (lambda m: m["tasks"][0].pop("prompt"), "prompt"),
        (lambda m: m["images"][0].update(file="../../etc/passwd"), "not a file name inside the export"),
    ],
)
def test_a_bad_manifest_is_refused_clearly_and_changes_nothing(seeded, settings, tmp_path, change, message):
    run("export", str(tmp_path / "export"))
    manifest = manifest_of(tmp_path / "export")
    change(manifest)
    (tmp_path / "export" / "manifest.json").write_text(json.dumps(manifest))
    media = empty_installation(settings, tmp_path)

    with pytest.raises(CommandError, match=message):
        run("import", str(tmp_path / "export"))

    assert not any(counts().values())
    assert media_files(media) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user named “nobody”"),
        (["--zip"], "already exists"),
    ],
)
def test_export_refuses_bad_arguments_clearly(seeded, tmp_path, args, message):
    (tmp_path / "export").write_text("something already here")
    with pytest.raises(CommandError, match=message):
        run("export", str(tmp_path / "export"), *args)
    assert (tmp_path / "export").read_text() == "something already here"


def test_import_of_something_that_is_not_an_export_is_refused(db, tmp_path):
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(CommandError, match="not a zip file"):
        run("import", str(tmp_path / "notes.zip"))
    with pytest.raises(CommandError, match="does not exist"):
        run("import", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="has no manifest.json"):
        run("import", str(tmp_path))


def test_the_commands_write_audit_entries(seeded, tmp_path):
    run("export", str(tmp_path / "export"), "--user", "alice")
    run("import", str(tmp_path / "export"))
    exported, imported = AuditEntry.objects.get(event=Event.EXPORTED), AuditEntry.objects.get(event=Event.IMPORTED)
    assert exported.actor is None and exported.detail["user"] == "alice" and exported.detail["images"] == 3
    assert imported.actor is None and imported.detail["added"] == {}


def downloaded(client) -> zipfile.ZipFile:
    response = client.post(reverse("account_export"))
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="atelier-export-')
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_download_my_data_streams_only_that_persons_export(seeded, client):
    User = get_user_model()
    for name, other in (("alice", "bob"), ("bob", "alice")):
        person = User.objects.get(username=name)
        client.force_login(person)
        archive = downloaded(client)
        manifest = json.loads(archive.read("manifest.json"))
        theirs = {str(pk) for pk in Image.objects.filter(owner=person).values_list("pk", flat=True)}
        assert {n for n in archive.namelist() if n != "manifest.json"} == {f"originals/{pk}.png" for pk in theirs}
        assert [p["username"] for p in manifest["people"]] == [name]
        assert other not in archive.read("manifest.json").decode()
        for image in manifest["images"]:  # the originals as stored, parameters text and all
            original = Image.objects.get(pk=image["id"]).file.name
            with default_storage.open(original, "rb") as stored:
                assert archive.read(image["file"]) == stored.read()
            assert hashlib.sha256(archive.read(image["file"])).hexdigest() == image["sha256"]
            assert b"parameters" in archive.read(image["file"])
    entries = AuditEntry.objects.filter(event=Event.EXPORTED).order_by("pk")
    assert [(entry.actor_name, entry.detail["images"]) for entry in entries] == [("alice", 3), ("bob", 2)]


def test_download_my_data_is_a_csrf_checked_post(seeded):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.get(reverse("account_export")).status_code == 405
    assert client.post(reverse("account_export")).status_code == 403
    assert not AuditEntry.objects.filter(event=Event.EXPORTED).exists()
    page = client.get(reverse("account"))
    assert b"Download my data" in page.content and reverse("account_export").encode() in page.content


def test_a_missing_original_is_named_in_the_export_and_left_out_of_the_import(seeded, settings, tmp_path):
    lost = Image.objects.get(task__prompt="a tidepool")
    default_storage.delete(lost.file.name)

    run("export", str(tmp_path / "export"))

    entry = next(image for image in manifest_of(tmp_path / "export")["images"] if image["id"] == str(lost.pk))
    assert entry["file"] is None and "could not be read" in entry["missing"]
    empty_installation(settings, tmp_path)
    run("import", str(tmp_path / "export"))
    assert Image.objects.count() == 4 and not Image.objects.filter(pk=lost.pk).exists()


# --- SQLite -> PostgreSQL, with the README's commands ---------------------------------------------


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def python(env: dict[str, str], code: str) -> str:
    script = "import django; django.setup()\n" + code
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


GALLERY = "import json; from tests.test_export_import import gallery; print(json.dumps(gallery()))"


@pytest.fixture
def postgres_database():
    name = f"atelier_import_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.subprocess
def test_an_export_from_sqlite_imports_into_postgresql_with_the_same_gallery(tmp_path, postgres_database):
    sqlite = servers.app_env(tmp_path / "sqlite", 0)
    postgres = {**servers.app_env(tmp_path / "postgres", 0), "DATABASE_URL": postgres_database}
    for env in (sqlite, postgres):
        Path(env["MEDIA_ROOT"]).mkdir(parents=True)
        manage(env, "migrate", "--noinput", "-v0")
    python(sqlite, "from tests.test_export_import import seed; seed()")
    before = json.loads(python(sqlite, GALLERY))
    export = tmp_path / "atelier-export.zip"

    started = time.monotonic()
    manage(sqlite, "export", str(export), "--zip")
    exported = time.monotonic() - started
    manage(postgres, "import", str(export))
    imported = time.monotonic() - started - exported
    print(f"export {exported:.2f} s, import {imported:.2f} s for {len(before) - 1} people")

    assert json.loads(python(postgres, GALLERY)) == before
    files = media_files(Path(postgres["MEDIA_ROOT"]))
    again = manage(postgres, "import", str(export))
    assert again.startswith("Imported nothing;")
    assert json.loads(python(postgres, GALLERY)) == before
    assert media_files(Path(postgres["MEDIA_ROOT"])) == files


def test_a_task_still_running_when_exported_comes_in_canceled(db, settings, tmp_path):
    """Its worker and vendor job stay on the old installation: the new one must not generate
    (and pay for) it again."""
    running = FinishedTaskFactory(owner=UserFactory(), status=Task.Status.PROCESSING, finished_at=None, images=0)
    run("export", str(tmp_path / "export"))
    empty_installation(settings, tmp_path)

    run("import", str(tmp_path / "export"))

    task = Task.objects.get(pk=running.pk)
    assert task.status == Task.Status.CANCELED and task.finished_at is not None and task.held_by == ""
