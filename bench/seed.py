"""Seed a fresh database: users, tasks, images and tags in bulk, plus what the load needs.

Run in the app's environment (`python -m bench.seed --out seed.json ...`): migrates, then
inserts with bulk_create in batches and writes the ids, the session cookie and the API token
the load generator uses. Only a handful of images get real files (the thumbnail and API
endpoints read them); the rest point at plausible paths, which the gallery never opens.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import timedelta
from pathlib import Path

import django

PASSWORD = "bench password, not secret"
TAG_NAMES = [
    "landscape",
    "portrait",
    "night",
    "dawn",
    "sea",
    "forest",
    "city",
    "winter",
    "summer",
    "red",
    "blue",
    "gold",
    "study",
    "final",
    "draft",
    "cat",
    "dog",
    "bird",
    "tower",
    "bridge",
    "abstract",
    "ink",
    "watercolor",
    "oil",
    "neon",
    "fog",
    "rain",
    "desert",
    "mountain",
    "river",
    "garden",
    "interior",
    "robot",
    "ship",
    "train",
    "market",
    "festival",
    "ruins",
    "moon",
    "sun",
]
SUBJECTS = [
    "a lighthouse",
    "a fox",
    "an old tram",
    "a lantern",
    "a glass greenhouse",
    "a paper boat",
    "a castle",
    "a heron",
]
SETTINGS = ["at dawn", "in the rain", "under a red moon", "on a frozen lake", "in a busy market", "above the clouds"]
STYLES = ["ink sketch", "watercolor", "oil painting", "isometric render", "woodcut", "photograph"]
MODELS = [("offline", "sketch-v1")] * 6 + [("openai", "gpt-image-1"), ("dashscope", "wan2.2-t2i-flash")]
BATCH = 2000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--measured", type=int, required=True, help="images of the measured user")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrated = time.perf_counter()
    summary = seed(args.users, args.images, args.measured)
    summary["migrate_seconds"] = round(migrated - started, 2)
    summary["seed_seconds"] = round(time.perf_counter() - migrated, 2)
    args.out.write_text(json.dumps(summary, indent=2))


def seed(users: int, images: int, measured_images: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    rng = random.Random(8)
    password = make_password(PASSWORD)  # hashed once: hashing is slow on purpose
    people = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench{n}", password=password) for n in range(users)]
    )
    measured, others = people[0], people[1:]
    counts = {measured.pk: measured_images}
    rest = images - measured_images
    for n, person in enumerate(others):
        counts[person.pk] = rest // len(others) + (1 if n < rest % len(others) else 0)
    totals = {"users": users, "images": 0, "tasks": 0, "tags": 0, "image_tags": 0, "publications": 0}
    for person in people:
        made = seed_person(person, counts[person.pk], rng)
        for key, value in made.items():
            totals[key] += value
    return {"counts": totals, **fixtures_for(measured, rng)}


def seed_person(person, image_count: int, rng: random.Random) -> dict[str, int]:
    """The person's tasks (1–4 images each) newest first, ten minutes apart, tags on most."""
    from django.db import transaction
    from django.utils import timezone

    from generator.models import Image, Tag, Task
    from sharing.models import Publication

    tags = Tag.objects.bulk_create([Tag(owner=person, name=name) for name in TAG_NAMES])
    Through = Image.tags.through
    newest = timezone.now() - timedelta(hours=1)
    made = {"images": 0, "tasks": 0, "tags": len(tags), "image_tags": 0, "publications": 0}
    step = 0
    while made["images"] < image_count:
        tasks, batch_images, links = [], [], []
        while made["images"] + len(batch_images) < image_count and len(batch_images) < BATCH:
            created = newest - timedelta(minutes=10 * step)
            step += 1
            provider, model = rng.choice(MODELS)
            count = min(rng.choice((1, 1, 2, 4)), image_count - made["images"] - len(batch_images))
            task = Task(
                owner=person,
                status=Task.Status.COMPLETED,
                provider=provider,
                model=model,
                prompt=f"{rng.choice(SUBJECTS)} {rng.choice(SETTINGS)}, {rng.choice(STYLES)}",
                width=1024,
                height=1024,
                num_images=count,
                seed=rng.randrange(2**32),
                progress=100,
                attempts=1,
                created_at=created,
                started_at=created,
                finished_at=created + timedelta(seconds=3),
            )
            tasks.append(task)
            for index in range(count):
                image = Image(
                    task=task,
                    owner=person,
                    index=index,
                    width=1024,
                    height=1024,
                    bytes=rng.randrange(40_000, 60_000),
                    seed=task.seed + index,
                    is_favorite=rng.random() < 0.1,
                    created_at=created + timedelta(seconds=3, microseconds=index),
                )
                image.file.name = f"images/{person.pk}/{image.created_at:%Y/%m}/{image.pk}.png"
                image.thumbnail.name = f"thumbs/{person.pk}/{image.created_at:%Y/%m}/{image.pk}.webp"
                batch_images.append(image)
                links += [
                    Through(image_id=image.pk, tag_id=tag.pk) for tag in rng.sample(tags, rng.choice((0, 1, 2, 3)))
                ]
        with transaction.atomic():
            Task.objects.bulk_create(tasks, batch_size=BATCH)
            Image.objects.bulk_create(batch_images, batch_size=BATCH)
            Through.objects.bulk_create(links, batch_size=BATCH * 2)
            # Every image is published, so Explore pages through all of them (explore_first_page).
            Publication.objects.bulk_create(
                [
                    Publication(
                        image=image,
                        owner=person,
                        provider=image.task.provider,
                        model=image.task.model,
                        prompt=image.task.prompt,
                        published_at=image.created_at,
                        like_count=rng.randrange(20),
                        popular_score=rng.randrange(60),
                    )
                    for image in batch_images
                ],
                batch_size=BATCH,
            )
        made["publications"] += len(batch_images)
        made["tasks"] += len(tasks)
        made["images"] += len(batch_images)
        made["image_tags"] += len(links)
    return made


def fixtures_for(person, rng: random.Random) -> dict:
    """What the load generator asks for: a session, a token and the objects it requests."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from accounts.tokens import create_token
    from generator.lib.keyset import encode_cursor
    from generator.models import Image, Task

    session = SessionStore()
    session[SESSION_KEY] = str(person.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = person.get_session_auth_hash()
    session.create()

    # The create page polls a task's card while it is generating.
    polled = Task.objects.create(
        owner=person,
        status=Task.Status.PROCESSING,
        provider="offline",
        model="sketch-v1",
        prompt="a lighthouse at dawn, ink sketch",
        width=1024,
        height=1024,
        num_images=2,
        seed=77,
        progress=40,
        attempts=1,
        started_at=timezone.now(),
        claimed_at=timezone.now(),
    )
    gallery = Image.objects.filter(owner=person).order_by("-created_at", "-id")
    newest = list(gallery[:8])
    write_real_files(newest)
    deep = gallery.count() * 9 // 10
    api_task = newest[0].task
    return {
        "user_id": person.pk,
        "session_key": session.session_key,
        "api_token": create_token(person, "bench").plaintext,
        "poll_task_id": str(polled.pk),
        "api_task_id": str(api_task.pk),
        "api_task_images": api_task.images.count(),
        "thumbnail_image_id": str(newest[0].pk),
        "deep_cursor": encode_cursor(gallery[deep]),
        "deep_position": deep,
        "filter_tag": "forest",
        "filter_tag_images": Image.objects.filter(owner=person, tags__name="forest").count(),
    }


def write_real_files(images) -> None:
    """Real originals and thumbnails for a handful of images, drawn by the offline provider."""
    from django.conf import settings

    from generator.lib import imaging
    from generator.providers.base import GenerationRequest
    from generator.providers.offline import draw_sketch

    root = Path(settings.MEDIA_ROOT)
    for image in images:
        task = image.task
        request = GenerationRequest(
            prompt=task.prompt,
            negative_prompt="",
            model=task.model,
            width=task.width,
            height=task.height,
            num_images=1,
            steps=None,
            guidance_scale=None,
            seed=image.seed,
        )
        png = draw_sketch(request, image.seed)
        for name, data in (
            (image.file.name, png),
            (image.thumbnail.name, imaging.make_thumbnail(png, settings.THUMBNAIL_SIZE)),
        ):
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


if __name__ == "__main__":
    main()
