"""The provider rows of docs/RELIABILITY.md: each fault, what the person sees, the final state.

One real HTTP provider (SiliconFlow's protocol) is pointed at a local server that misbehaves;
whatever happens, the task ends completed or failed with a readable reason, and nothing is
left on disk without a row.
"""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Response

from generator.models import Image, Task
from generator.scheduler.inline import run_task

from .factories import TaskFactory

PATH = "/v1/images/generations"


def png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (1024, 1024), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def provider(configure_provider, httpserver, settings):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    return configure_provider(
        "siliconflow", API_KEY="k", BASE_URL=httpserver.url_for("/v1"), SELF_HOSTED=True, TIMEOUT_SECONDS=0.5
    )


def run(user) -> Task:
    task = TaskFactory(owner=user, provider="siliconflow", model="Kwai-Kolors/Kolors", width=1024, height=1024)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def stored_files(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def answer_ok(httpserver, image_body: bytes = b"", content_type="image/png"):
    httpserver.expect_request("/img.png").respond_with_data(image_body or png(), content_type=content_type)
    return {"images": [{"url": httpserver.url_for("/img.png")}], "seed": 11, "timings": {"inference": 0.1}}


def test_baseline_a_healthy_provider_completes(provider, httpserver, user, media_root):
    httpserver.expect_request(PATH, method="POST").respond_with_json(answer_ok(httpserver))
    task = run(user)
    assert task.status == Task.Status.COMPLETED and len(stored_files(media_root)) == 2


def test_a_paid_call_that_times_out_is_not_sent_again_and_says_so(provider, httpserver, user, media_root):
    def slow(request):
        time.sleep(0.8)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    task = run(user)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "timeout", 1)
    assert task.error_message == (
        "The provider did not answer within 0.5 seconds. Atelier did not send the request again, because the "
        "provider may still have made (and charged for) the pictures."
    )
    assert stored_files(media_root) == []


def test_connection_refused_is_retried_then_fails_readably(configure_provider, settings, user, media_root):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure_provider("siliconflow", API_KEY="k", BASE_URL=f"http://127.0.0.1:{port}/v1")
    task = run(user)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "connection_error", 2)
    assert task.error_message == "Atelier could not reach the provider."


def test_a_500_then_success_completes_on_the_second_attempt(provider, httpserver, user):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"code": 50000, "message": "boom", "data": None}, status=500
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(answer_ok(httpserver))
    task = run(user)
    assert (task.status, task.attempts) == (Task.Status.COMPLETED, 2)


def test_a_persistent_500_fails_readably(provider, httpserver, user, media_root):
    httpserver.expect_request(PATH).respond_with_json({"code": 50000, "message": "boom", "data": None}, status=500)
    task = run(user)
    assert (task.status, task.error_code) == (Task.Status.FAILED, "provider_unavailable")
    assert "temporary problem" in task.error_message and "boom" not in task.error_message


def test_a_429_is_retried_with_backoff(provider, httpserver, user):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"code": 42900, "message": "IPM limit", "data": None}, status=429
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(answer_ok(httpserver))
    task = run(user)
    assert (task.status, task.attempts) == (Task.Status.COMPLETED, 2)


def test_malformed_json_fails_readably(provider, httpserver, user, media_root):
    httpserver.expect_request(PATH).respond_with_data("{not json", content_type="application/json")
    task = run(user)
    assert task.status == Task.Status.FAILED and task.error_code == "provider_error"
    assert "{not json" not in task.error_message
    assert stored_files(media_root) == []


def test_image_bytes_that_are_not_an_image_fail_and_store_nothing(provider, httpserver, user, media_root):
    body = answer_ok(httpserver, image_body=b"<html>an error page</html>", content_type="image/png")
    httpserver.expect_request(PATH).respond_with_json(body)
    task = run(user)
    assert (task.status, task.error_code) == (Task.Status.FAILED, "invalid_image")
    assert stored_files(media_root) == [] and not Image.objects.exists()
