"""Moving data between installations: `manage.py export` / `import` and "Download my data".

An export is a folder (or the same folder as a zip) holding `originals/<image id>.png`, the
original PNGs byte for byte (their parameters text chunks intact), and `manifest.json`:

    {"format": "atelier-export", "version": 1, "exported_at": ..., "scope": {"user": name|null},
     "people": [...], "tags": [...], "presets": [...], "variant_sets": [...], "tasks": [...],
     "images": [...], "image_tags": [...], "publications": [...], "likes": [...],
     "publication_favourites": [...]}

Every object is named by a key that means the same thing in any database: tasks, images and
publications by their UUIDs, people by username, tags by (owner, name), presets by (owner or
null, name), variant sets by (owner, created_at, mode), likes and publication favourites by
(username, publication id). Thumbnails are not exported: import makes them from the originals.
Never exported: API tokens, passwords, share links (their secrets would open on the new
installation), views by day, audit entries.

Import checks everything first (manifest, every file's sha256) and changes nothing when
anything is wrong. Then it adds what is missing and leaves what exists as it is, so importing
twice adds nothing. People missing on this installation are created inactive with no usable
password. Files are written through the storage first, then their rows in one transaction per
batch; a failed batch's files are removed (as services.store_images does).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Count
from django.utils import timezone

from prompts.models import Preset, VariantSet
from sharing.models import Favourite, Like, Publication

from .. import services
from ..lib import imaging
from ..lib.zipstream import ZipMember, stream_zip
from ..models import ACTIVE_STATUSES, Image, Tag, Task

FORMAT = "atelier-export"
VERSION = 1
MANIFEST = "manifest.json"
BATCH_SIZE = 200  # images per import transaction

PEOPLE_FIELDS = ("username", "email", "first_name", "last_name", "date_joined", "is_active")
# A task's own columns; the scheduler's (who holds it, its queue message, its vendor job) stay behind.
TASK_SKIPPED = {"owner", "preset", "variant_set", "from_publication", "claimed_at", "enqueued_at"}
TASK_SKIPPED |= {"next_attempt_at", "held_by", "heartbeat_at", "provider_job"}
IMAGE_FIELDS = ("id", "index", "width", "height", "bytes", "mime", "seed", "created_at")
PRESET_FIELDS: tuple[str, ...] = ("name", "name_zh_hans", "prompt_template", "negative_prompt", "model")
PRESET_FIELDS += ("width", "height", "steps", "guidance_scale", "position", "created_at")
PUBLICATION_FIELDS: tuple[str, ...] = ("id", "title", "show_prompt", "provider", "model", "prompt")
PUBLICATION_FIELDS += ("published_at", "hidden_at", "hidden_reason", "view_count", "download_count")


class PortableError(ValueError):
    """An export or import refused, with a message for the person who asked."""


def _task_fields() -> list[models.Field]:
    return [f for f in Task._meta.concrete_fields if f.name not in TASK_SKIPPED]


def _values(obj: models.Model, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def _parsed(model: type[models.Model], data: dict[str, Any], names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The manifest's values as the model's Python values (a missing or bad one: PortableError)."""
    parsed = {}
    for name in names:
        model_field = model._meta.get_field(name)
        if name not in data:
            raise PortableError(f"{model._meta.model_name} entry without “{name}”")
        value = data[name]
        try:
            parsed[name] = None if value is None else model_field.to_python(value)  # type: ignore[union-attr]
        except Exception as error:  # noqa: BLE001  (to_python raises ValidationError and friends)
            raise PortableError(f"{model._meta.model_name} “{name}” is not valid: {value!r}") from error
    return parsed


# --- export -------------------------------------------------------------------------------------


def original_name(image_id: object) -> str:
    return f"originals/{image_id}.png"


@dataclass
class Export:
    """One export's rows (the manifest without checksums) and its originals, read as they go."""

    manifest: dict[str, Any]
    images: list[Image]
    hashes: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def members(self) -> Iterator[ZipMember]:
        """The originals (each hashed as it is read), then manifest.json with their checksums."""
        for image in self.images:
            yield ZipMember(
                original_name(image.pk),
                timezone.localtime(image.created_at),
                partial(_HashingReader.open, image.file.name, str(image.pk), self.hashes),
                size=image.bytes,
            )
        yield ZipMember(MANIFEST, timezone.localtime(), lambda: io.BytesIO(self.finished_manifest()))

    def skip(self, member: ZipMember, error: OSError) -> None:
        self.missing[PurePosixPath(member.name).stem] = "the stored original could not be read"

    def finished_manifest(self) -> bytes:
        for entry in self.manifest["images"]:
            if entry["id"] in self.missing:
                entry.update(file=None, sha256=None, missing=self.missing[entry["id"]])
            else:
                entry["sha256"] = self.hashes[entry["id"]]
        return json.dumps(self.manifest, default=_json_value, ensure_ascii=False, indent=1).encode()

    def stream(self) -> Iterator[bytes]:
        """The export as a zip, chunk by chunk (for StreamingHttpResponse or a file)."""
        return stream_zip(self.members(), on_error=self.skip)

    @property
    def counts(self) -> dict[str, int]:
        return {key: len(self.manifest[key]) for key in ("people", "tasks", "images", "tags", "publications")}


def _json_value(value: object) -> object:
    """Times in full (to the microsecond: variant sets are named by theirs), ids and amounts as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"{value.__class__.__name__} in the manifest")


class _HashingReader:
    """A stored original opened for reading whose sha256 is noted once it has been read through."""

    def __init__(self, source: Any, key: str, hashes: dict[str, str]) -> None:
        self.source, self.key, self.hashes, self.digest = source, key, hashes, hashlib.sha256()

    @classmethod
    def open(cls, name: str, key: str, hashes: dict[str, str]) -> _HashingReader:
        return cls(default_storage.open(name, "rb"), key, hashes)

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        if not data:
            self.hashes[self.key] = self.digest.hexdigest()
        return data

    def __enter__(self) -> _HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.source.close()


def collect(user: User | None = None) -> Export:
    """Everything (user None) or one person's own data, ready to be written or streamed."""
    users = get_user_model().objects.order_by("username")
    if user is not None:
        users = users.filter(pk=user.pk)
    mine = {} if user is None else {"owner": user}
    tasks = Task.objects.filter(**mine).select_related("owner", "preset__owner", "variant_set__owner")
    images = list(Image.objects.filter(**mine).select_related("owner").order_by("created_at", "id"))
    image_ids = {image.pk for image in images}
    publications = Publication.objects.filter(**mine).select_related("owner", "hidden_by")
    pub_ids = set(publications.values_list("pk", flat=True))
    given = {} if user is None else {"user": user}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now(),
        "atelier_version": settings.ATELIER_VERSION,
        "scope": {"user": user.get_username() if user is not None else None},
        "people": [_values(person, PEOPLE_FIELDS) for person in users],
        "tags": [
            {"owner": tag.owner.get_username(), "name": tag.name, "created_at": tag.created_at}
            for tag in Tag.objects.filter(**mine).select_related("owner").order_by("owner__username", "name")
        ],
        "presets": [
            {
                "owner": preset.owner.get_username() if preset.owner else None,
                **_values(preset, PRESET_FIELDS),
                "preview": preset.preview_id if preset.preview_id in image_ids else None,
            }
            for preset in Preset.objects.filter(**mine).select_related("owner").order_by("pk")
        ],
        "variant_sets": [
            {**_variant_set_key(variant_set), "prompt": variant_set.prompt, "kept": variant_set.kept_id}
            for variant_set in VariantSet.objects.filter(**mine).select_related("owner").order_by("created_at")
        ],
        "tasks": [
            {
                "owner": task.owner.get_username(),
                **{f.name: getattr(task, f.attname) for f in _task_fields()},
                "preset": _preset_key(task.preset) if task.preset else None,
                "variant_set": _variant_set_key(task.variant_set) if task.variant_set else None,
                "from_publication": task.from_publication_id
                if user is None or task.from_publication_id in pub_ids
                else None,
            }
            for task in tasks.order_by("created_at", "id")
        ],
        "images": [
            {
                "owner": image.owner.get_username(),
                "task": image.task_id,
                **_values(image, IMAGE_FIELDS),
                "favourite": image.is_favorite,
                "file": original_name(image.pk),
                "sha256": None,
            }
            for image in images
        ],
        "image_tags": [
            {"image": image_id, "tag": name}
            for image_id, name in Image.tags.through.objects.filter(image__in=image_ids)
            .order_by("image_id", "tag__name")
            .values_list("image_id", "tag__name")
        ],
        "publications": [
            {
                "owner": publication.owner.get_username(),
                "image": publication.image_id,
                **_values(publication, PUBLICATION_FIELDS),
                # Who hid it is staff's name: only in a whole-installation export.
                "hidden_by": publication.hidden_by.get_username() if publication.hidden_by and user is None else None,
            }
            for publication in publications.order_by("published_at", "id")
        ],
        # What the person gave (a whole export: everyone's); never others' likes of their images.
        "likes": _reactions(Like.objects.filter(**given)),
        "publication_favourites": _reactions(Favourite.objects.filter(**given)),
    }
    for entry in manifest["images"]:
        entry["id"] = str(entry["id"])
    return Export(manifest=manifest, images=images)


def _preset_key(preset: Preset) -> dict[str, Any]:
    return {"owner": preset.owner.get_username() if preset.owner else None, "name": preset.name}


def _variant_set_key(variant_set: VariantSet) -> dict[str, Any]:
    return {"owner": variant_set.owner.get_username(), "created_at": variant_set.created_at, "mode": variant_set.mode}


def _reactions(rows: models.QuerySet) -> list[dict[str, Any]]:
    return [
        {"user": username, "publication": publication_id, "created_at": created_at}
        for username, publication_id, created_at in rows.order_by("created_at", "pk").values_list(
            "user__username", "publication_id", "created_at"
        )
    ]


def export(dest: str | Path, *, user: User | None = None, as_zip: bool = False) -> Export:
    """Write the export to `dest`: a new folder, or a new .zip file with as_zip."""
    dest = Path(dest)
    if as_zip and dest.exists():
        raise PortableError(f"{dest} already exists: name a new zip file.")
    if not as_zip and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PortableError(f"{dest} already exists and is not an empty folder: name a new folder.")
    if not dest.parent.is_dir():
        raise PortableError(f"{dest.parent} is not a folder.")
    result = collect(user)
    temporary = dest.with_name(f".{dest.name}.partial")
    try:
        if as_zip:
            with temporary.open("wb") as out:
                for chunk in result.stream():
                    out.write(chunk)
        else:
            _write_folder(temporary, result)
        if not as_zip and dest.exists():
            dest.rmdir()  # the empty folder asked for: the finished export takes its place
        temporary.replace(dest)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary)
        elif temporary.exists():
            temporary.unlink()
    return result


def _write_folder(folder: Path, result: Export) -> None:
    (folder / "originals").mkdir(parents=True)
    for member in result.members():
        try:
            source = member.open()
        except OSError as error:
            result.skip(member, error)
            continue
        with source, (folder / member.name).open("wb") as out:
            while chunk := source.read(64 * 1024):
                out.write(chunk)


# --- import -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What one import added; `skipped` names what was not brought in, and why."""

    added: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def count(self, kind: str, added: bool) -> None:
        bucket = self.added if added else self.existing
        bucket[kind] = bucket.get(kind, 0) + 1

    def summary(self) -> str:
        added = ", ".join(f"{n} {kind}" for kind, n in self.added.items() if n) or "nothing"
        existing = sum(self.existing.values())
        return f"Imported {added}; {existing} already present, left as they were; {len(self.skipped)} skipped."


class _Source:
    """An export folder or zip, read by member name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as error:
                raise PortableError(f"{path} is not a zip file.") from error
        elif not path.is_dir():
            raise PortableError(f"{path} does not exist: give an export folder or zip.")

    def read(self, name: str) -> bytes:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise PortableError(f"{name!r} is not a file name inside the export.")
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return self.path.joinpath(*parts).read_bytes()
        except (KeyError, FileNotFoundError) as error:
            raise PortableError(f"{name} is missing from the export.") from error

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def read_manifest(source: _Source) -> dict[str, Any]:
    try:
        manifest = json.loads(source.read(MANIFEST))
    except PortableError as error:
        raise PortableError(f"{source.path} is not an Atelier export: it has no {MANIFEST}.") from error
    except ValueError as error:
        raise PortableError(f"{MANIFEST} is not valid JSON ({error}).") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PortableError(f'{MANIFEST} is not an Atelier export\'s manifest (no "format": "{FORMAT}").')
    if manifest.get("version") != VERSION:
        raise PortableError(
            f"This export is version {manifest.get('version')!r}; this Atelier reads version {VERSION}. "
            "Upgrade Atelier, or export again from the newer one."
        )
    return manifest


def import_(source: str | Path, *, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Bring an export (folder or zip) in; see the module docstring. PortableError: nothing changed."""
    opened = _Source(Path(source))
    try:
        manifest = read_manifest(opened)
        try:
            plan = _Plan(manifest)
        except (KeyError, TypeError, AttributeError) as error:
            raise PortableError(
                f"{MANIFEST} is incomplete or damaged ({error.__class__.__name__}: {error})."
            ) from error
        plan.check_files(opened)
        return plan.run(opened, batch_size)
    finally:
        opened.close()


class _Plan:
    """The manifest parsed and checked: nothing is written until every part of it makes sense."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.people = [_parsed(User, entry, PEOPLE_FIELDS) for entry in manifest["people"]]
        names = {person["username"] for person in self.people}
        self.tags = [
            {"owner": entry["owner"], **_parsed(Tag, entry, ("name", "created_at"))} for entry in manifest["tags"]
        ]
        self.presets = [
            {"owner": entry["owner"], "preview": _uuid(entry["preview"]), **_parsed(Preset, entry, PRESET_FIELDS)}
            for entry in manifest["presets"]
        ]
        self.variant_sets = [
            {
                "owner": entry["owner"],
                "kept": _uuid(entry["kept"]),
                **_parsed(VariantSet, entry, ("created_at", "mode", "prompt")),
            }
            for entry in manifest["variant_sets"]
        ]
        task_names = [f.name for f in _task_fields()]
        self.tasks = [
            {
                "owner": entry["owner"],
                "preset": entry["preset"],
                "variant_set": _variant_key(entry["variant_set"]),
                "from_publication": _uuid(entry["from_publication"]),
                **_parsed(Task, entry, task_names),
            }
            for entry in manifest["tasks"]
        ]
        self.images = [
            {
                "owner": entry["owner"],
                "task": _uuid(entry["task"]),
                "favourite": bool(entry["favourite"]),
                "file": entry["file"],
                "sha256": entry["sha256"],
                **_parsed(Image, entry, IMAGE_FIELDS),
            }
            for entry in manifest["images"]
        ]
        self.image_tags = [(_uuid(entry["image"]), str(entry["tag"])) for entry in manifest["image_tags"]]
        self.publications = [
            {
                "owner": entry["owner"],
                "image": _uuid(entry["image"]),
                "hidden_by": entry["hidden_by"],
                **_parsed(Publication, entry, PUBLICATION_FIELDS),
            }
            for entry in manifest["publications"]
        ]
        self.likes = [_reaction(Like, entry) for entry in manifest["likes"]]
        self.favourites = [_reaction(Favourite, entry) for entry in manifest["publication_favourites"]]
        owners = {row["owner"] for rows in (self.tags, self.tasks, self.images, self.variant_sets) for row in rows}
        owners |= {row["owner"] for row in self.publications} | {p["owner"] for p in self.presets if p["owner"]}
        if unknown := sorted(owners - names):
            raise PortableError(f"{MANIFEST} names owners that are not among its people: {', '.join(unknown)}.")
        task_ids = {task["id"] for task in self.tasks}
        if orphans := [str(image["id"]) for image in self.images if image["task"] not in task_ids]:
            raise PortableError(f"{MANIFEST} has images whose task it does not hold: {', '.join(orphans[:5])}.")

    def check_files(self, source: _Source) -> None:
        """Every original is there and is what was exported (sha256), before anything is written."""
        bad = []
        for image in self.images:
            if image["file"] is None:
                continue
            data = source.read(image["file"])
            if hashlib.sha256(data).hexdigest() != image["sha256"]:
                bad.append(f"{image['file']} (image {image['id']})")
        if bad:
            raise PortableError(
                "These files are damaged (their sha256 is not the one in the manifest), so nothing was "
                f"imported: {', '.join(bad)}. Export again, or copy the export again."
            )

    def run(self, source: _Source, batch_size: int) -> ImportReport:
        report = ImportReport()
        with transaction.atomic():
            people = self._people(report)
            tags = self._tags(people, report)
            presets = self._presets(people, report)
            variant_sets = self._variant_sets(people, report)
        existing_tasks = set(Task.objects.filter(pk__in=[t["id"] for t in self.tasks]).values_list("pk", flat=True))
        existing_images = set(Image.objects.filter(pk__in=[i["id"] for i in self.images]).values_list("pk", flat=True))
        new_tasks = [task for task in self.tasks if task["id"] not in existing_tasks]
        report.existing["tasks"] = len(self.tasks) - len(new_tasks)
        report.existing["images"] = len(existing_images)
        tags_of: dict[uuid.UUID | None, list[str]] = {}
        for image_id, name in self.image_tags:
            tags_of.setdefault(image_id, []).append(name)
        new_images = [image for image in self.images if image["id"] not in existing_images]
        for image in new_images:
            if image["file"] is None:
                report.skipped.append(f"image {image['id']}: its original was missing when it was exported")
        new_images = [image for image in new_images if image["file"] is not None]
        Batch = partial(_Batch, source, people, presets, variant_sets, tags, tags_of, report)
        # The tasks first (each with none, some or all of its images), then the images in batches.
        for start in range(0, len(new_tasks), batch_size):
            Batch(new_tasks[start : start + batch_size], []).run()
        for start in range(0, len(new_images), batch_size):
            Batch([], new_images[start : start + batch_size]).run()
        with transaction.atomic():
            publications = self._publications(people, report)
            self._reactions(Like, self.likes, people, publications, report, "likes")
            self._reactions(Favourite, self.favourites, people, publications, report, "publication favourites")
            self._links(new_tasks, presets, variant_sets, publications)
        return report

    def _people(self, report: ImportReport) -> dict[str, User]:
        User = get_user_model()
        found = {
            user.get_username(): user for user in User.objects.filter(username__in=[p["username"] for p in self.people])
        }
        for person in self.people:
            if person["username"] in found:
                report.count("people", added=False)
                continue
            user = User(**{**person, "is_active": False})
            user.set_unusable_password()
            user.save()
            found[user.get_username()] = user
            report.count("people", added=True)
        return found

    def _tags(self, people: dict[str, User], report: ImportReport) -> dict[tuple[str, str], Tag]:
        found: dict[tuple[str, str], Tag] = {}
        for entry in self.tags:
            owner = people[entry["owner"]]
            tag = Tag.objects.filter(owner=owner, name__iexact=entry["name"]).first()
            report.count("tags", added=tag is None)
            if tag is None:
                tag = Tag.objects.create(owner=owner, name=entry["name"], created_at=entry["created_at"])
            found[(entry["owner"], entry["name"].lower())] = tag
        return found

    def _presets(self, people: dict[str, User], report: ImportReport) -> dict[tuple[str | None, str], Preset]:
        found: dict[tuple[str | None, str], Preset] = {}
        for entry in self.presets:
            owner = people[entry["owner"]] if entry["owner"] else None
            preset = Preset.objects.filter(owner=owner, name=entry["name"]).first()
            report.count("presets", added=preset is None)
            if preset is None:
                fields = {name: entry[name] for name in PRESET_FIELDS}
                preset = Preset.objects.create(owner=owner, **fields)
                preset.imported_preview = entry["preview"]  # type: ignore[attr-defined]
            found[(entry["owner"], entry["name"])] = preset
        return found

    def _variant_sets(self, people: dict[str, User], report: ImportReport) -> dict[tuple, VariantSet]:
        found: dict[tuple, VariantSet] = {}
        for entry in self.variant_sets:
            owner = people[entry["owner"]]
            variant_set = VariantSet.objects.filter(
                owner=owner, created_at=entry["created_at"], mode=entry["mode"]
            ).first()
            report.count("variant sets", added=variant_set is None)
            if variant_set is None:
                variant_set = VariantSet.objects.create(
                    owner=owner, mode=entry["mode"], prompt=entry["prompt"], created_at=entry["created_at"]
                )
                variant_set.imported_kept = entry["kept"]  # type: ignore[attr-defined]
            found[(entry["owner"], entry["created_at"], entry["mode"])] = variant_set
        return found

    def _publications(self, people: dict[str, User], report: ImportReport) -> dict[uuid.UUID, Publication]:
        images = Image.objects.in_bulk([entry["image"] for entry in self.publications])
        found = {p.pk: p for p in Publication.objects.filter(pk__in=[entry["id"] for entry in self.publications])}
        taken = set(Publication.objects.filter(image__in=images).values_list("image_id", flat=True))
        for entry in self.publications:
            if entry["id"] in found or entry["image"] in taken:
                report.count("publications", added=False)
                continue
            image = images.get(entry["image"])
            if image is None or image.owner.get_username() != entry["owner"]:
                report.skipped.append(f"publication {entry['id']}: its image is not here")
                continue
            hidden_by = people.get(entry["hidden_by"]) or _user_named(entry["hidden_by"])
            fields = {name: entry[name] for name in PUBLICATION_FIELDS}
            found[entry["id"]] = Publication.objects.create(
                image=image, owner=image.owner, hidden_by=hidden_by, **fields
            )
            report.count("publications", added=True)
        return found

    def _reactions(self, model, rows, people, publications, report: ImportReport, kind: str) -> None:
        existing = set(
            model.objects.filter(publication__in=[row["publication"] for row in rows]).values_list(
                "user__username", "publication_id"
            )
        )
        added = set()
        for row in rows:
            user = people.get(row["user"]) or _user_named(row["user"])
            publication = (
                publications.get(row["publication"]) or Publication.objects.filter(pk=row["publication"]).first()
            )
            if (row["user"], row["publication"]) in existing:
                report.count(kind, added=False)
            elif user is None or publication is None:
                report.skipped.append(f"{kind[:-1]} of {row['user']}: publication {row['publication']} is not here")
            else:
                model.objects.create(user=user, publication=publication, created_at=row["created_at"])
                added.add(publication.pk)
                report.count(kind, added=True)
        # The counts on Publication stay what the rows say (sharing.reactions keeps them so).
        counted = "like_count" if model is Like else "favourite_count"
        for pk, total in (
            Publication.objects.filter(pk__in=added).annotate(total=Count("likes" if model is Like else "favourites"))
        ).values_list("pk", "total"):
            Publication.objects.filter(pk=pk).update(**{counted: total})

    def _links(self, new_tasks, presets, variant_sets, publications) -> None:
        """What new rows point at, once it is all there: a preset's preview, the kept variant,
        the publication a task took its settings from."""
        for preset in presets.values():
            preview = getattr(preset, "imported_preview", None)
            if preview and Image.objects.filter(pk=preview, owner=preset.owner).exists():
                Preset.objects.filter(pk=preset.pk).update(preview=preview)
        for variant_set in variant_sets.values():
            kept = getattr(variant_set, "imported_kept", None)
            if kept and Task.objects.filter(pk=kept, variant_set=variant_set).exists():
                VariantSet.objects.filter(pk=variant_set.pk).update(kept=kept)
        for task in new_tasks:
            if task["from_publication"] and Publication.objects.filter(pk=task["from_publication"]).exists():
                Task.objects.filter(pk=task["id"]).update(from_publication=task["from_publication"])


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as error:
        raise PortableError(f"{value!r} is not an id.") from error


def _variant_key(key: dict | None) -> tuple | None:
    if key is None:
        return None
    return (key["owner"], _parsed(VariantSet, key, ("created_at",))["created_at"], key["mode"])


def _reaction(model: type[models.Model], entry: dict[str, Any]) -> dict[str, Any]:
    return {"user": entry["user"], "publication": _uuid(entry["publication"]), **_parsed(model, entry, ("created_at",))}


def _user_named(name: str | None) -> User | None:
    if not name:
        return None
    return get_user_model().objects.filter(username=name).first()


@dataclass
class _Batch:
    """Some tasks or some images brought in together: files written first, then the rows in one
    transaction; the files go again when the rows could not be written."""

    source: _Source
    people: dict[str, User]
    presets: dict[tuple[str | None, str], Preset]
    variant_sets: dict[tuple, VariantSet]
    tags: dict[tuple[str, str], Tag]
    tags_of: dict[uuid.UUID | None, list[str]]
    report: ImportReport
    tasks: list[dict[str, Any]]
    images: list[dict[str, Any]]

    def run(self) -> None:
        written: list[str] = []
        rows: list[Image] = []
        try:
            for entry in self.images:
                image = self._stored(entry, written)
                if image is not None:
                    rows.append(image)
            with transaction.atomic():
                Task.objects.bulk_create([self._task(entry) for entry in self.tasks])
                Image.objects.bulk_create(rows)
                through = Image.tags.through
                through.objects.bulk_create(
                    [
                        through(image_id=image.pk, tag_id=self.tags[(image.owner.get_username(), name.lower())].pk)
                        for image in rows
                        for name in self.tags_of.get(image.pk, [])
                        if (image.owner.get_username(), name.lower()) in self.tags
                    ]
                )
        except BaseException:
            services.delete_files(written)
            raise
        self.report.added["tasks"] = self.report.added.get("tasks", 0) + len(self.tasks)
        self.report.added["images"] = self.report.added.get("images", 0) + len(rows)

    def _task(self, entry: dict[str, Any]) -> Task:
        fields = {f.name: entry[f.name] for f in _task_fields()}
        if fields["status"] in ACTIVE_STATUSES:
            # Its worker and vendor job belong to the old installation: it cannot go on here.
            fields.update(status=Task.Status.CANCELED, finished_at=fields["finished_at"] or timezone.now())
        preset = self.presets.get((entry["preset"]["owner"], entry["preset"]["name"])) if entry["preset"] else None
        if entry["preset"] and preset is None and entry["preset"]["owner"] is None:
            preset = Preset.objects.filter(owner=None, name=entry["preset"]["name"]).first()
        return Task(
            owner=self.people[entry["owner"]],
            preset=preset,
            variant_set=self.variant_sets.get(entry["variant_set"]) if entry["variant_set"] else None,
            **fields,
        )

    def _stored(self, entry: dict[str, Any], written: list[str]) -> Image | None:
        data = self.source.read(entry["file"])
        owner = self.people[entry["owner"]]
        image = Image(task_id=entry["task"], owner=owner, is_favorite=entry["favourite"], **_image_fields(entry))
        try:
            thumbnail = imaging.make_thumbnail(data, settings.THUMBNAIL_SIZE)
        except Exception:  # noqa: BLE001  (Pillow raises many types for a file it cannot read)
            self.report.skipped.append(f"image {entry['id']}: its original is not a readable image")
            return None
        image.file.save("original.png", ContentFile(data), save=False)
        written.append(image.file.name)
        image.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
        written.append(image.thumbnail.name)
        return image


def _image_fields(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: entry[name] for name in IMAGE_FIELDS}
