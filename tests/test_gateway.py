"""The OpenAI-compatible API (/v1/, gateway/) driven by the official `openai` client, sync and
async, against the live test server, with a worker finishing the tasks meanwhile."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import openai
import pytest
import requests
from django.core import signing
from django.utils import timezone
from django_q.conf import Conf
from PIL import Image as PILImage

from accounts.tokens import create_token, revoke_token
from gateway import links
from generator import limits
from generator.models import CLAIMABLE_STATUSES, Image, Task
from generator.providers import PermanentProviderError
from generator.scheduler.inline import run_task
from tests.factories import UserFactory
from usage import quotas

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.django_db(transaction=True)


class Worker(threading.Thread):
    """Stands in for the django-q2 cluster: runs every waiting task to its end, in this process
    (the live server's requests wait for it while it works)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopping.is_set():
                for pk in Task.objects.filter(status__in=CLAIMABLE_STATUSES).values_list("pk", flat=True):
                    run_task(str(pk))
                time.sleep(0.02)
        finally:
            connection.close()


@pytest.fixture
def worker(monkeypatch) -> Iterator[Worker]:
    """Tasks are not run inline by the request that makes them: they wait for this worker."""
    monkeypatch.setattr(Conf, "SYNC", False)
    running = Worker()
    running.start()
    yield running
    running.stopping.set()
    running.join(timeout=30)


@pytest.fixture
def no_worker(monkeypatch) -> None:
    """Nothing runs the tasks: they stay pending."""
    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def token(user) -> str:
    return create_token(user, "chat").plaintext


@pytest.fixture
def base_url(live_server) -> str:
    return f"{live_server.url}/v1"


@pytest.fixture
def client(base_url, token) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=token)


def png(data: bytes) -> PILImage.Image:
    assert data.startswith(PNG_MAGIC)
    picture = PILImage.open(io.BytesIO(data))
    picture.load()
    return picture


# --- generating -------------------------------------------------------------------------------


def test_a_url_answer_links_the_original_png_for_anyone_holding_the_link(client, user, worker):
    answer = client.images.generate(prompt="a lighthouse at dawn", response_format="url", size="256x256")

    assert len(answer.data) == 1
    assert answer.data[0].revised_prompt == "a lighthouse at dawn"
    assert answer.created > 0
    link = answer.data[0].url
    assert link.startswith("http://localhost:")
    fetched = requests.get(link, timeout=10)  # no token, no session: a chat server fetching it
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Cache-Control"] == "private"
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    assert png(fetched.content).size == (256, 256)
    image = Image.objects.get(owner=user)
    assert fetched.content == image.file.open("rb").read()


def test_b64_json_n2_a_size_and_the_extensions_make_one_task_in_the_owners_gallery(client, user, worker):
    answer = client.images.generate(
        prompt="two foxes",
        n=2,
        size="320x192",
        response_format="b64_json",
        extra_body={"seed": 7, "negative_prompt": "people"},
    )

    assert [png(base64.b64decode(item.b64_json)).size for item in answer.data] == [(320, 192), (320, 192)]
    task = Task.objects.get()
    assert (task.owner, task.source, task.status) == (user, Task.Source.OPENAI, Task.Status.COMPLETED)
    assert (task.seed, task.negative_prompt, task.num_images) == (7, "people", 2)
    assert all(item.revised_prompt == "two foxes" for item in answer.data)
    tagged = Image.objects.filter(owner=user, tags__name="openai-api")
    assert tagged.count() == 2


def test_the_async_client_waits_for_its_pictures_too(base_url, token, worker):
    async def generate() -> list:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=token) as client:
            answers = await asyncio.gather(
                *(
                    client.images.generate(prompt=f"boat {n}", size="128x128", response_format="b64_json")
                    for n in range(3)
                )
            )
            return [item for answer in answers for item in answer.data]

    items = asyncio.run(generate())

    assert sorted(item.revised_prompt for item in items) == ["boat 0", "boat 1", "boat 2"]
    assert all(png(base64.b64decode(item.b64_json)).size == (128, 128) for item in items)
    assert Task.objects.filter(status=Task.Status.COMPLETED).count() == 3


def test_size_auto_and_no_model_take_the_defaults(client, worker, settings):
    answer = client.images.generate(prompt="a kite", size="auto", response_format="b64_json")

    task = Task.objects.get()
    assert (task.provider, task.model, task.width, task.height) == ("offline", "sketch-v1", 1024, 1024)
    assert png(base64.b64decode(answer.data[0].b64_json)).size == (1024, 1024)


# --- models -----------------------------------------------------------------------------------


def test_models_lists_the_offered_models_and_the_aliases_whose_target_is_offered(client, settings):
    settings.OPENAI_COMPAT_MODEL_ALIASES = {"dall-e-2": "offline:sketch-v1", "dall-e-3": "openai:gpt-image-2"}

    listed = client.models.list()

    assert [(model.id, model.object, model.owned_by) for model in listed.data] == [
        ("offline:sketch-v1", "model", "offline"),
        ("dall-e-2", "model", "offline"),
    ]
    assert all(isinstance(model.created, int) for model in listed.data)
    assert client.models.retrieve("dall-e-2").owned_by == "offline"
    assert client.models.retrieve("offline:sketch-v1").id == "offline:sketch-v1"
    assert client.models.retrieve("sketch-v1").id == "sketch-v1"  # a bare id one provider offers
    with pytest.raises(openai.NotFoundError) as refused:
        client.models.retrieve("dall-e-3")  # its target is not offered here
    assert refused.value.code == "model_not_found"


def test_an_alias_and_the_default_model_setting_pick_the_model(client, worker, settings, scripted):
    settings.OPENAI_COMPAT_MODEL_ALIASES = {"dall-e-3": "scripted:fixed"}
    settings.OPENAI_COMPAT_DEFAULT_MODEL = "dall-e-3"

    client.images.generate(prompt="by alias", model="dall-e-3", size="512x512", response_format="b64_json")
    client.images.generate(prompt="by default", size="auto", response_format="b64_json")

    made = Task.objects.order_by("created_at")
    assert [(task.provider, task.model, task.width) for task in made] == [
        ("scripted", "fixed", 512),
        ("scripted", "fixed", 256),  # auto: the model's first fixed size
    ]


# --- refusals and failures, each as the client's own exception ---------------------------------


def test_a_bad_or_revoked_token_is_an_authentication_error(base_url, token, user):
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=base_url, api_key="atl_not-a-real-token").images.generate(prompt="x")
    assert refused.value.code == "invalid_api_key"

    revoke_token(user.api_tokens.get())
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key=token).models.list()
    assert not Task.objects.exists()


def test_a_bad_size_or_no_prompt_is_a_bad_request_naming_the_parameter(client, base_url, token):
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="a cat", size="4096x4096")
    assert refused.value.param == "size"
    assert "between 64 and 2048" in refused.value.message

    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="   ")
    assert refused.value.param == "prompt"

    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="a cat", n=5)
    assert refused.value.param == "n"

    headers = {"Authorization": f"Bearer {token}"}
    no_prompt = requests.post(f"{base_url}/images/generations", json={"n": 1}, headers=headers, timeout=10)
    assert no_prompt.status_code == 400
    assert no_prompt.json()["error"]["param"] == "prompt"
    not_json = requests.post(f"{base_url}/images/generations", data=b"{oops", headers=headers, timeout=10)
    assert not_json.status_code == 400
    assert set(not_json.json()["error"]) == {"message", "type", "param", "code"}
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("response_format", "jpeg"), ("quality", "ultra"), ("style", "loud"), ("user", "x" * 300), ("seed", "7")],
)
def test_openai_options_are_checked_too(client, field, value):
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="a cat", extra_body={field: value})
    assert refused.value.param == field
    assert not Task.objects.exists()


def test_quality_style_and_user_are_accepted(client, worker):
    answer = client.images.generate(
        prompt="a cat", quality="hd", style="natural", user="someone-42", size="128x128", response_format="b64_json"
    )
    assert len(answer.data) == 1


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as refused:
        client.images.generate(prompt="a cat", model="dall-e-9")
    assert (refused.value.code, refused.value.param) == ("model_not_found", "model")


def test_a_retired_model_is_not_found(client, scripted):
    from generator import catalogue
    from generator.models import ProviderStatus

    ProviderStatus.objects.create(provider="scripted", retired_models=["fixed"])
    catalogue.forget()
    with pytest.raises(openai.NotFoundError):
        client.images.generate(prompt="a cat", model="scripted:fixed")
    assert "scripted:fixed" not in [model.id for model in client.models.list().data]


def test_going_over_generate_rate_is_a_rate_limit_error_with_retry_after(client, settings, worker, ratelimit_clock):
    settings.GENERATE_RATE = "1/m"
    client.images.generate(prompt="first", size="128x128", response_format="b64_json")

    with pytest.raises(openai.RateLimitError) as refused:
        client.with_options(max_retries=0).images.generate(prompt="second", size="128x128")

    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 60
    assert "x-should-retry" not in refused.value.response.headers  # nothing was made: trying later is fine
    assert Task.objects.count() == 1


def test_the_cap_on_waiting_tasks_is_a_rate_limit_error(client, settings, no_worker):
    settings.MAX_QUEUED_TASKS_PER_USER = 0
    with pytest.raises(openai.RateLimitError) as refused:
        client.with_options(max_retries=0).images.generate(prompt="one too many")
    assert refused.value.response.headers["Retry-After"] == str(limits.QUEUED_CAP_RETRY_SECONDS)
    assert not Task.objects.exists()


def test_a_quota_refusal_is_insufficient_quota_and_not_retried(client, monkeypatch):
    """The mapping, with usage.quotas refusing (the quotas themselves: the next test)."""
    resets_at = timezone.now() + timezone.timedelta(hours=2)

    asked = []

    def refuse(owner, wanted):
        asked.append(owner)
        exceeded = limits.Exceeded("rate_limit_exceeded", "You have used today's images.", 1, limits.QUOTA_EXCEEDED)
        raise quotas.QuotaExceeded(exceeded, "images_per_day", resets_at)

    monkeypatch.setattr(quotas, "check_all", refuse)
    with pytest.raises(openai.RateLimitError) as refused:
        client.images.generate(prompt="over the quota")  # max_retries=2: it would retry a 429

    assert (refused.value.code, refused.value.type) == ("insufficient_quota", "insufficient_quota")
    assert refused.value.body["message"] == "You have used today's images."
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert 7190 <= int(refused.value.response.headers["Retry-After"]) <= 7200
    assert len(asked) == 1  # the client obeyed x-should-retry: false
    assert not Task.objects.exists()


def test_past_images_per_day_the_client_gets_insufficient_quota_once(client, settings, worker):
    settings.QUOTA_IMAGES_PER_DAY = 1
    client.images.generate(prompt="the day's one", size="128x128", response_format="b64_json")

    with pytest.raises(openai.RateLimitError) as refused:
        client.images.generate(prompt="one more")

    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert Task.objects.count() == 1  # the client did not retry


def test_a_prompt_the_provider_refuses_is_a_content_policy_bad_request(client, scripted, worker):
    scripted.script = [PermanentProviderError("content_rejected", "The provider rejected this prompt.")]
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="something refused", model="scripted:fixed", size="512x512")
    assert refused.value.code == "content_policy_violation"
    assert refused.value.body["message"] == "The provider rejected this prompt."
    assert Task.objects.get().status == Task.Status.FAILED


def test_a_task_that_fails_at_the_provider_is_a_500_that_the_client_does_not_retry(client, scripted, worker):
    scripted.script = [PermanentProviderError("provider_error", "The provider failed the job.")]
    with pytest.raises(openai.InternalServerError) as refused:
        client.images.generate(prompt="unlucky", model="scripted:fixed", size="512x512")

    assert refused.value.status_code == 500
    assert refused.value.body["message"] == "The provider failed the job."
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert Task.objects.count() == 1  # max_retries=2, yet one task


def test_a_wait_that_times_out_says_the_task_goes_on_and_is_not_retried(client, settings, no_worker):
    settings.OPENAI_COMPAT_WAIT_SECONDS = 0.3
    with pytest.raises(openai.InternalServerError) as refused:
        client.images.generate(prompt="slow one")

    task = Task.objects.get()
    assert refused.value.status_code == 503
    assert refused.value.code == "timeout"
    assert str(task.pk) in refused.value.message and "gallery" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert task.status == Task.Status.PENDING  # still waiting for a worker, not given up


# --- the rest of /v1/ speaks OpenAI's shape too ---------------------------------------------------


def test_unknown_addresses_and_methods_answer_in_openais_shape(base_url, token):
    headers = {"Authorization": f"Bearer {token}"}
    unknown = requests.post(f"{base_url}/chat/completions", json={}, headers=headers, timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_url"
    wrong_method = requests.get(f"{base_url}/images/generations", headers=headers, timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert set(wrong_method.json()["error"]) == {"message", "type", "param", "code"}
    no_token = requests.get(f"{base_url}/models", timeout=10)
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "invalid_api_key"
    session_only = requests.get(f"{base_url}/models", headers={"Cookie": "sessionid=whatever"}, timeout=10)
    assert session_only.status_code == 401


# --- links and isolation ------------------------------------------------------------------------


@pytest.fixture
def two_links(client, worker) -> list[str]:
    answer = client.images.generate(prompt="two of them", n=2, size="128x128", response_format="url")
    return [item.url for item in answer.data]


def test_a_link_altered_to_name_another_image_is_refused(two_links):
    first, second = two_links
    first_token, second_token = (link.rpartition("/")[2].removesuffix(".png") for link in two_links)
    # The second image's id with the first link's signature and time.
    swapped = second_token.split(":")[0] + ":" + ":".join(first_token.split(":")[1:])
    for altered in (swapped, first_token[:-1] + ("A" if first_token[-1] != "A" else "B")):
        refused = requests.get(first.replace(first_token, altered), timeout=10)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"
    assert requests.get(second, timeout=10).status_code == 200


def test_a_link_stops_working_when_it_expires_or_its_image_is_deleted(two_links, settings, monkeypatch):
    first, second = two_links
    later = time.time() + settings.OPENAI_COMPAT_URL_SECONDS + 1
    with monkeypatch.context() as clock:
        clock.setattr(signing, "time", SimpleNamespace(time=lambda: later))
        assert requests.get(first, timeout=10).status_code == 404
    assert requests.get(first, timeout=10).status_code == 200

    image_id = links.image_id_of(second.rpartition("/")[2].removesuffix(".png"))
    Image.objects.filter(pk=image_id).delete()
    gone = requests.get(second, timeout=10)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"]


def test_each_token_makes_tasks_for_its_own_owner_only(base_url, token, user, other_user_token, worker):
    other, other_token = other_user_token
    for key in (token, other_token):
        openai.OpenAI(base_url=base_url, api_key=key).images.generate(
            prompt="mine", size="128x128", response_format="b64_json"
        )

    assert Task.objects.filter(owner=user).count() == 1
    assert Task.objects.filter(owner=other).count() == 1
    theirs = Image.objects.get(owner=other)
    # The studio's own file address stays owner-checked for a token, as for a session.
    refused = requests.get(
        f"{base_url.removesuffix('/v1')}/api/v1/images/{theirs.pk}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert refused.status_code == 404


@pytest.fixture
def other_user_token():
    other = UserFactory()
    return other, create_token(other, "theirs").plaintext


def test_an_unexpected_error_is_a_500_in_openais_shape_that_is_not_retried(client, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("a bug")

    monkeypatch.setattr("generator.services.create_task", broken)
    with pytest.raises(openai.InternalServerError) as refused:
        client.images.generate(prompt="a cat")  # max_retries=2
    assert refused.value.status_code == 500
    assert refused.value.body["type"] == "server_error"
    assert "a bug" not in refused.value.body["message"]
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert len(calls) == 1


def test_a_waiting_generation_does_not_count_as_one_of_a_persons_open_pages():
    """The event stream refuses a sixth page per person (generator/views/events.py); the Hub's
    waiting generations are woken the same way but not counted."""
    from generator import live

    async def watch() -> tuple[int, int]:
        hub = live.Hub()
        page, generation = hub.watch(1), hub.watch(1, counted=False)
        counts = (hub.count(1), len(hub.watchers[1]))
        hub.unwatch(1, generation)
        hub.unwatch(1, page)
        hub.stop()
        return counts

    assert asyncio.run(watch()) == (1, 2)
