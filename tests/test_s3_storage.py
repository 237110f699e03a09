"""STORAGE=s3 end to end against a real S3-compatible server (moto's server mode, in process).

The storage is the one config/settings.py builds for STORAGE=s3 (s3_storage), pointed at the
local server: the worker writes images and thumbnails into the bucket, the owner's image
URL answers with a redirect to a short-lived signed link, anyone else gets a 404, and
deleting removes the objects.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image as PILImage

from config.settings import s3_storage
from generator import services
from generator.models import Image
from generator.scheduler.inline import run_task

from .factories import TaskFactory

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
KEYS = {"aws_access_key_id": "atelier-test", "aws_secret_access_key": "atelier-test-secret"}
PRESIGNED_SECONDS = 120


@pytest.fixture
def s3_client(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **KEYS)


@pytest.fixture
def bucket(settings, s3_endpoint, s3_client):
    """A fresh private bucket as the default storage (Django resets default_storage when
    STORAGES changes, and again when the fixture restores it)."""
    name = f"atelier-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(
            bucket=name,
            endpoint_url=s3_endpoint,
            region=REGION,
            access_key=KEYS["aws_access_key_id"],
            secret_key=KEYS["aws_secret_access_key"],
            presigned_seconds=PRESIGNED_SECONDS,
        ),
    }
    return name


def keys_in(s3_client, bucket: str) -> set[str]:
    return {item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.fixture
def s3_task(user, bucket):
    task = TaskFactory(owner=user, num_images=2)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == task.Status.COMPLETED
    return task


@pytest.mark.s3
def test_the_default_storage_is_the_bucket(bucket):
    from storages.backends.s3 import S3Storage

    assert default_storage.bucket_name == bucket
    assert isinstance(default_storage._wrapped, S3Storage)


@pytest.mark.s3
def test_a_task_stores_its_images_and_thumbnails_in_the_bucket(s3_task, s3_client, bucket, media_root):
    images = list(s3_task.images.all())
    assert len(images) == 2
    expected = {name for image in images for name in (image.file.name, image.thumbnail.name)}
    assert keys_in(s3_client, bucket) == expected
    for image in images:
        assert image.file.name.startswith(f"images/{s3_task.owner_id}/")
        assert image.thumbnail.name.startswith(f"thumbs/{s3_task.owner_id}/")
        head = s3_client.head_object(Bucket=bucket, Key=image.file.name)
        assert head["ContentType"] == "image/png"
        assert head["ContentLength"] == image.bytes
        assert s3_client.head_object(Bucket=bucket, Key=image.thumbnail.name)["ContentType"] == "image/webp"
    # Nothing was written to the local media folder.
    assert not Path(media_root).exists() or not any(Path(media_root).rglob("*.*"))


@pytest.mark.s3
def test_the_objects_are_private(s3_task, s3_client, bucket):
    image = s3_task.images.first()
    grants = s3_client.get_object_acl(Bucket=bucket, Key=image.file.name)["Grants"]
    assert grants and all(grant["Grantee"].get("Type") == "CanonicalUser" for grant in grants)


@pytest.mark.s3
def test_the_owner_is_redirected_to_a_short_lived_signed_link(s3_task, auth_client, s3_endpoint, bucket):
    image = s3_task.images.order_by("index").first()
    response = auth_client.get(image.url)
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    link = response["Location"]
    parts = urlsplit(link)
    assert link.startswith(f"{s3_endpoint}/{bucket}/{image.file.name}")
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == [str(PRESIGNED_SECONDS)]
    assert query["X-Amz-Signature"] and query["X-Amz-Credential"][0].startswith(KEYS["aws_access_key_id"])
    fetched = requests.get(link, timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    picture = PILImage.open(io.BytesIO(fetched.content))
    assert picture.format == "PNG"
    assert picture.text["parameters"].startswith(s3_task.prompt)
    assert f"Seed: {image.seed}" in picture.text["parameters"]


@pytest.mark.s3
def test_the_thumbnail_and_the_download_are_signed_links_too(s3_task, auth_client):
    image = s3_task.images.first()
    thumbnail = auth_client.get(image.thumbnail_url)
    assert thumbnail.status_code == 302
    fetched = requests.get(thumbnail["Location"], timeout=10)
    assert fetched.headers["Content-Type"] == "image/webp"
    assert PILImage.open(io.BytesIO(fetched.content)).format == "WEBP"

    download = auth_client.get(image.download_url)
    assert download.status_code == 302
    assert "response-content-disposition=attachment" in download["Location"]
    fetched = requests.get(download["Location"], timeout=10)
    assert fetched.headers["Content-Disposition"] == f'attachment; filename="atelier-{image.pk}.png"'


@pytest.mark.s3
def test_a_known_etag_is_still_a_304_without_a_new_link(s3_task, auth_client):
    image = s3_task.images.first()
    response = auth_client.get(image.url, HTTP_IF_NONE_MATCH=f'"{image.pk}-o"')
    assert response.status_code == 304
    assert "Location" not in response


@pytest.mark.s3
def test_another_person_gets_a_404_and_no_link(s3_task, other_client, client):
    image = s3_task.images.first()
    for url in (image.url, image.thumbnail_url, image.download_url):
        response = other_client.get(url)
        assert response.status_code == 404
        assert "Location" not in response
        assert b"X-Amz" not in response.content
    assert client.get(image.url).status_code == 401


@pytest.mark.s3
def test_deleting_images_removes_their_objects(s3_task, s3_client, bucket, django_capture_on_commit_callbacks):
    doomed = s3_task.images.order_by("index").first()
    kept = s3_task.images.exclude(pk=doomed.pk).get()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.delete_images(Image.objects.filter(pk=doomed.pk)) == 1
    assert keys_in(s3_client, bucket) == {kept.file.name, kept.thumbnail.name}

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_tasks(type(s3_task).objects.filter(pk=s3_task.pk))
    assert keys_in(s3_client, bucket) == set()


@pytest.mark.s3
def test_a_missing_object_name_is_a_404(s3_task, auth_client):
    image = s3_task.images.first()
    Image.objects.filter(pk=image.pk).update(file="")
    assert auth_client.get(image.url).status_code == 404


@pytest.mark.s3
def test_the_readiness_probe_writes_and_deletes_in_the_bucket(bucket, s3_client):
    from generator.ops import health

    assert health.check_storage() == {"ok": True}
    assert keys_in(s3_client, bucket) == set()


@pytest.mark.s3
def test_a_zip_download_streams_the_originals_from_the_bucket(s3_task, auth_client, s3_client, bucket):
    images = list(s3_task.images.all())
    response = auth_client.post(reverse("generator:gallery_download"), {"image": [str(image.pk) for image in images]})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    for image in images:
        stored = s3_client.get_object(Bucket=bucket, Key=image.file.name)["Body"].read()
        assert archive.read(f"atelier-{image.pk}.png") == stored


# --- the environment wiring (config/settings.py read fresh in a subprocess) -------------------


def settings_with(**env: str) -> subprocess.CompletedProcess:
    script = (
        "import json; from django.conf import settings;"
        "d = settings.STORAGES['default']; o = dict(d.get('OPTIONS', {})); c = o.pop('client_config', None);"
        "print(json.dumps({'backend': d['BACKEND'], 'options': o,"
        " 'timeouts': c and [c.connect_timeout, c.read_timeout],"
        " 'img_src': settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "STORAGE"))}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.subprocess
def test_storage_s3_is_configured_from_the_environment():
    result = settings_with(
        STORAGE="s3",
        S3_BUCKET="atelier-media",
        S3_ENDPOINT_URL="http://minio:9000",
        S3_REGION="eu-central-1",
        S3_ACCESS_KEY_ID="key",
        S3_SECRET_ACCESS_KEY="secret",
        S3_PRESIGNED_SECONDS="60",
    )
    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout)
    assert configured["backend"] == "storages.backends.s3.S3Storage"
    assert configured["options"] == {
        "bucket_name": "atelier-media",
        "endpoint_url": "http://minio:9000",
        "region_name": "eu-central-1",
        "access_key": "key",
        "secret_key": "secret",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": 60,
        "file_overwrite": False,
    }
    assert configured["timeouts"] == [5, 20]
    # Pages may show images from the bucket the image view redirects to.
    assert configured["img_src"] == ["'self'", "data:", "http://minio:9000"]


@pytest.mark.subprocess
def test_storage_s3_on_aws_allows_the_buckets_own_host_for_images():
    result = settings_with(STORAGE="s3", S3_BUCKET="atelier-media", S3_REGION="eu-central-1")
    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout)
    assert configured["options"]["endpoint_url"] is None and configured["options"]["access_key"] is None
    assert "https://atelier-media.s3.eu-central-1.amazonaws.com" in configured["img_src"]


@pytest.mark.subprocess
def test_storage_defaults_to_local_files():
    result = settings_with()
    assert result.returncode == 0, result.stderr
    configured = json.loads(result.stdout)
    assert configured["backend"] == "django.core.files.storage.FileSystemStorage"
    assert configured["img_src"] == ["'self'", "data:"]


@pytest.mark.subprocess
def test_storage_s3_without_a_bucket_is_refused_by_name():
    result = settings_with(STORAGE="s3")
    assert result.returncode != 0
    assert "Set the S3_BUCKET environment variable" in result.stderr


@pytest.mark.subprocess
def test_an_unknown_storage_or_serving_mode_is_refused():
    assert "STORAGE must be local or s3" in settings_with(STORAGE="ftp").stderr
    assert "SERVE_MEDIA_WITH must be django or x-accel" in settings_with(SERVE_MEDIA_WITH="apache").stderr


# --- local files handed to nginx (SERVE_MEDIA_WITH=x-accel) ------------------------------------


@pytest.fixture
def x_accel(settings):
    settings.SERVE_MEDIA_WITH = "x-accel"
    settings.X_ACCEL_PREFIX = "/protected-media/"


def test_x_accel_hands_the_owners_file_to_nginx(x_accel, completed_task, auth_client):
    image = completed_task.images.first()
    response = auth_client.get(image.url)
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{image.file.name}"
    assert response["Content-Type"] == "image/png"
    assert response["ETag"] == f'"{image.pk}-o"'
    thumbnail = auth_client.get(image.thumbnail_url)
    assert thumbnail["X-Accel-Redirect"] == f"/protected-media/{image.thumbnail.name}"
    assert thumbnail["Content-Type"] == "image/webp"
    download = auth_client.get(image.download_url)
    assert download["Content-Disposition"] == f'attachment; filename="atelier-{image.pk}.png"'


def test_x_accel_never_points_nginx_at_another_persons_file(x_accel, completed_task, other_client):
    image = completed_task.images.first()
    response = other_client.get(image.url)
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


def test_x_accel_reports_a_missing_file_itself(x_accel, completed_task, auth_client):
    image = completed_task.images.first()
    image.file.storage.delete(image.file.name)
    response = auth_client.get(image.url)
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


def test_local_files_are_streamed_by_default(completed_task, auth_client):
    image = completed_task.images.first()
    response = auth_client.get(image.url)
    assert response.status_code == 200
    assert "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
