"""Test data: factory-boy factories for users, tasks, images and tags.

    UserFactory()                          a person whose password is PASSWORD
    TaskFactory(owner=user)                a pending task (any field can be given)
    FinishedTaskFactory(owner=user)        a completed task: started, finished, with `num_images`
                                           images whose files really exist in storage
    ImageFactory(task=task)                one image of a task (owner from the task), with a real
                                           PNG and WebP thumbnail in storage; files=False: the row only
    TagFactory(owner=user)                 a tag called "tag N"

For hundreds of rows, the `bulk_create_batch` class methods build the rows like the factory
would and save them in one INSERT (no post-generation hooks run):

    ImageFactory.bulk_create_batch(60, owner=user)   # one finished task, 60 images, newest first
    TaskFactory.bulk_create_batch(500, owner=user, images_each=2)
    TagFactory.bulk_create_batch(60, owner=user)

Dated rows come back newest first, the n-th made `n * step` before `newest` (default: now).
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image as PILImage

from generator.lib import imaging
from generator.models import Image, Tag, Task, original_upload_to, thumbnail_upload_to
from generator.scheduler import claim

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def _dated(newest: datetime | None, step: timedelta, size: int) -> list[datetime]:
    newest = newest or timezone.now()
    return [newest - n * step for n in range(size)]


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    provider = "offline"
    model = "sketch-v1"
    prompt = factory.Sequence(lambda n: f"a lighthouse on a cliff, study {n}")
    width = 256
    height = 192
    num_images = 1
    seed = 1234
    created_at = factory.LazyFunction(timezone.now)

    @classmethod
    def bulk_create_batch(
        cls,
        size: int,
        *,
        owner,
        newest: datetime | None = None,
        step: timedelta = timedelta(seconds=1),
        images_each: int = 0,
        **fields,
    ) -> list[Task]:
        """`size` tasks of `owner` in one INSERT, newest first, each with `images_each` image
        rows (one more INSERT; no files, made when their task was)."""
        tasks = Task.objects.bulk_create(
            cls.build(owner=owner, created_at=created_at, **fields) for created_at in _dated(newest, step, size)
        )
        if images_each:
            Image.objects.bulk_create(
                ImageFactory.build(task=task, index=index, created_at=task.created_at)
                for task in tasks
                for index in range(images_each)
            )
        return tasks


def claimed(task: Task, worker: str = "test-worker") -> Task:
    """The task as a worker holds it after claiming it (processing, one more attempt)."""
    taken = claim.claim(task, worker)
    assert taken is not None, f"task {task.pk} ({task.status}) was not claimable"
    task.refresh_from_db()
    return task


class FinishedTaskFactory(TaskFactory):
    """A finished task as the worker leaves it: completed (or the `status` given), started and
    finished, and once completed with `num_images` images whose files exist in storage.

    images=N makes N images instead, images__files=False makes their rows without files.
    """

    status = Task.Status.COMPLETED
    progress = 100
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=3))
    started_at = factory.LazyAttribute(lambda task: task.created_at + timedelta(seconds=1))
    finished_at = factory.LazyAttribute(lambda task: task.created_at + timedelta(seconds=3))

    @factory.post_generation
    def images(task, create, extracted, **kwargs):
        if not create:
            return
        if extracted is None:  # as many as asked for, if it completed
            extracted = task.num_images if task.status == Task.Status.COMPLETED else 0
        count = extracted
        for index in range(count):
            ImageFactory(task=task, index=index, **kwargs)


def _stored_name(upload_to, image) -> str:
    """The name generator.models gives the file of this (resolving) image row."""
    row = SimpleNamespace(owner_id=image.task.owner_id, pk=image.id, created_at=image.created_at)
    return upload_to(row, "")


class ImageFactory(factory.django.DjangoModelFactory):
    """An image of `task` (default: a new finished task without images of its own).

    The row's owner is the task's: ImageFactory(task__owner=user) for an image of a new task of
    `user`. Unless files=False, a real PNG (with its parameters text) and a WebP thumbnail are
    written to default storage under the row's names: the ones generator.models gives, or the
    `file` / `thumbnail` names passed in (a name that already exists is left as it is).
    """

    class Meta:
        model = Image
        skip_postgeneration_save = True

    id = factory.LazyFunction(uuid.uuid4)
    task = factory.SubFactory(FinishedTaskFactory, images=0)
    owner = factory.SelfAttribute("task.owner")
    index = 0
    width = factory.SelfAttribute("task.width")
    height = factory.SelfAttribute("task.height")
    seed = factory.LazyAttribute(lambda image: None if image.task.seed is None else image.task.seed + image.index)
    bytes = 1000
    # As the worker stores them: one after the other when the task finished.
    created_at = factory.LazyAttribute(
        lambda image: (image.task.finished_at or timezone.now()) + timedelta(milliseconds=image.index)
    )
    file = factory.LazyAttribute(lambda image: _stored_name(original_upload_to, image))
    thumbnail = factory.LazyAttribute(lambda image: _stored_name(thumbnail_upload_to, image))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        if kwargs["owner"] != kwargs["task"].owner:
            raise TypeError("An image's owner is its task's: pass task=... or task__owner=..., not owner=...")
        return super()._create(model_class, *args, **kwargs)

    @factory.post_generation
    def files(image, create, extracted, **kwargs):
        if create and extracted is not False and store_files(image):
            image.save(update_fields=["file", "thumbnail", "bytes"])

    @classmethod
    def bulk_create_batch(
        cls,
        size: int,
        *,
        task: Task | None = None,
        owner=None,
        newest: datetime | None = None,
        step: timedelta = timedelta(minutes=1),
        files: bool = False,
        **fields,
    ) -> list[Image]:
        """`size` images of one task in one INSERT, newest first (index n is made n * step
        before `newest`). Without `task`, a new finished task of `owner`; `task__<field>` sets
        its fields. files=True writes real files first (as ImageFactory does)."""
        task_fields = {
            name.removeprefix("task__"): fields.pop(name) for name in list(fields) if name.startswith("task__")
        }
        if task is None:
            task = (
                FinishedTaskFactory(owner=owner, images=0, **task_fields)
                if owner
                else FinishedTaskFactory(images=0, **task_fields)
            )
        elif task_fields or (owner is not None and owner != task.owner):
            raise TypeError("Give either a task or the fields of a new one (owner, task__...), not both.")
        rows = [
            cls.build(task=task, index=index, created_at=created_at, **fields)
            for index, created_at in enumerate(_dated(newest, step, size))
        ]
        if files:
            for row in rows:
                store_files(row)
        return Image.objects.bulk_create(rows)


def store_files(image: Image) -> bool:
    """Write a small real PNG and its thumbnail under the image's names; True if a row field changed.

    The PNG carries the same `parameters` text the worker writes, and a colour of its own.
    """
    task = image.task
    changed = False
    if not default_storage.exists(image.file.name):
        colour = ((image.index * 67 + 40) % 256, ((image.seed or 0) * 31 + 90) % 256, 160)
        out = io.BytesIO()
        PILImage.new("RGB", (image.width, image.height), colour).save(out, "PNG")
        parameters = imaging.a1111_parameters(
            prompt=task.prompt, negative_prompt=task.negative_prompt, steps=task.steps,
            guidance_scale=task.guidance_scale, seed=image.seed, width=image.width, height=image.height,
            model=task.model, provider=task.provider, version=settings.ATELIER_VERSION,
        )  # fmt: skip
        png = imaging.embed_png_text(out.getvalue(), {"parameters": parameters})
        image.file.name = default_storage.save(image.file.name, ContentFile(png))
        image.bytes = len(png)
        changed = True
    if not default_storage.exists(image.thumbnail.name):
        with default_storage.open(image.file.name, "rb") as original:
            thumbnail = imaging.make_thumbnail(original.read(), settings.THUMBNAIL_SIZE)
        image.thumbnail.name = default_storage.save(image.thumbnail.name, ContentFile(thumbnail))
        changed = True
    return changed


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"tag {n}")

    @classmethod
    def bulk_create_batch(cls, size: int, *, owner, **fields) -> list[Tag]:
        """`size` tags of `owner` in one INSERT."""
        return Tag.objects.bulk_create(cls.build(owner=owner, **fields) for _ in range(size))


# --- sharing: published images (Explore) -------------------------------------------------


class PublicationFactory(factory.django.DjangoModelFactory):
    """A published image: PublicationFactory(image__task__owner=user), or image=an_image.
    Copies provider, model and prompt from the image's task (the prompt only when shown).

    PublicationFactory.bulk_create_batch(500, owner=user) publishes 500 new image rows (no files)
    in three INSERTs, newest first, `step` apart."""

    class Meta:
        model = "sharing.Publication"

    image = factory.SubFactory(ImageFactory)
    owner = factory.SelfAttribute("image.owner")
    show_prompt = True
    provider = factory.SelfAttribute("image.task.provider")
    model = factory.SelfAttribute("image.task.model")
    prompt = factory.LazyAttribute(lambda publication: publication.image.task.prompt if publication.show_prompt else "")
    published_at = factory.LazyFunction(timezone.now)

    @classmethod
    def bulk_create_batch(
        cls, size: int, *, owner, newest: datetime | None = None, step: timedelta = timedelta(seconds=1), **fields
    ):
        from sharing.models import Publication

        images = ImageFactory.bulk_create_batch(size, owner=owner)
        task = images[0].task
        return Publication.objects.bulk_create(
            Publication(
                image=image,
                owner=owner,
                provider=task.provider,
                model=task.model,
                prompt=task.prompt,
                published_at=published_at,
                **fields,
            )
            for image, published_at in zip(images, _dated(newest, step, size), strict=True)
        )
