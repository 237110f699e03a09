"""The VolcEngine visual (即梦 / CV) provider: its V4 signer, and whole tasks run against a
local stand-in for visual.volcengineapi.com (pytest-httpserver) that checks every signature.

The signer's test vector and the wire notes are the developers' copies in docs/reference/
(volc_signer_test_vector.json, providers.md §1, provider-audit.md §5); model limits and error
codes are the vendor's pages cited in generator/providers/volcengine.py.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import io
import json
import random
import string
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator.models import Image, Task
from generator.providers import PermanentProviderError, ProviderError, TransientProviderError
from generator.providers.base import GenerationRequest
from generator.providers.errors import MESSAGES, Kind, code_of
from generator.providers.volcengine import (
    DEFAULT_MODELS,
    ERROR_TABLE,
    MAX_SEED,
    PAID_ACTIONS,
    VolcEngineProvider,
    canonical_request,
    credential_scope,
    sign_request,
    signed_headers,
    string_to_sign,
    vendor_error,
)
from generator.scheduler.inline import run_task

from .factories import TaskFactory

REFERENCE = Path(__file__).parents[1] / "docs" / "reference"
VECTOR = json.loads((REFERENCE / "volc_signer_test_vector.json").read_text())
AK, SK = "AKLTlocaltest", "c2VjcmV0LWZvci10ZXN0cw=="
VERSION = "2022-08-31"
SIGNED = "content-type;host;x-content-sha256;x-date"


# --- the signer --------------------------------------------------------------------------------


def sign_vector(body: bytes | str) -> dict[str, str]:
    v = VECTOR
    credentials = {"access_key": v["access_key"], "secret_key": v["secret_key"]}
    scope = {"region": v["region"], "service": v["service"], "x_date": v["x_date"]}
    return sign_request(v["method"], v["host"], v["path"], v["query"], v["headers_in"], body, **credentials, **scope)


def test_the_signer_reproduces_the_test_vector():
    expected = VECTOR["expected"]
    headers = sign_vector(VECTOR["body_utf8"].encode())
    assert headers == {
        "X-Date": VECTOR["x_date"],
        "X-Content-Sha256": expected["X-Content-Sha256"],
        "Authorization": expected["Authorization"],
    }


def test_each_signing_step_matches_the_test_vector():
    v, expected = VECTOR, VECTOR["expected"]
    signed = signed_headers(
        {**v["headers_in"], "X-Date": v["x_date"], "X-Content-Sha256": expected["X-Content-Sha256"]}
    )
    canonical = canonical_request(v["method"], v["path"], v["query"], signed, expected["X-Content-Sha256"])
    assert canonical == expected["canonical_request"]
    scope = credential_scope(v["x_date"], v["region"], v["service"])
    assert scope == "20240717/cn-north-1/cv/request"
    assert string_to_sign(v["x_date"], scope, canonical) == expected["string_to_sign"]


def test_a_str_body_is_signed_as_its_utf8_bytes():
    assert sign_vector(VECTOR["body_utf8"]) == sign_vector(VECTOR["body_utf8"].encode())


def test_only_content_type_host_and_x_headers_are_signed_and_a_default_port_is_dropped():
    headers = {
        "Host": "visual.volcengineapi.com:443",
        "Content-Type": "application/json",
        "User-Agent": "Atelier",
        "Accept": "*/*",
        "X-Date": "20240717T064324Z",
    }
    signed = signed_headers(headers)
    assert signed == {
        "content-type": "application/json",
        "host": "visual.volcengineapi.com",
        "x-date": "20240717T064324Z",
    }


TEXT = string.ascii_letters + string.digits + " +~-_.*/%&=?!'()," + "千军万马éßñ🎨"


def random_text(rng: random.Random, low: int = 1, high: int = 16) -> str:
    return "".join(rng.choice(TEXT) for _ in range(rng.randint(low, high)))


def random_case(rng: random.Random) -> dict:
    """Inputs of every kind a caller could hand the signer, kept within real HTTP: header
    values without surrounding blanks and a non-empty path.
    """
    query: dict = {"Action": rng.choice(["CVProcess", "CVSync2AsyncSubmitTask"]), "Version": VERSION}
    for _ in range(rng.randint(0, 3)):
        query[random_text(rng, 1, 6).strip() or "k"] = random_text(rng, 0, 12)
    if rng.random() < 0.2:
        query["Multi"] = [random_text(rng), random_text(rng)]
    headers = {
        "Host": rng.choice(["visual.volcengineapi.com", "visual.volcengineapi.com:443", "127.0.0.1:8080", "h:80"]),
        "Content-Type": rng.choice(["application/json", "application/json; charset=utf-8"]),
    }
    if rng.random() < 0.3:
        headers["X-Security-Token"] = "".join(rng.choices(string.ascii_letters + "/+=", k=24))
    if rng.random() < 0.3:
        headers["User-Agent"] = "volc-sdk-python/v1.0.229"
    prompt = random_text(rng, 0, 60)
    fields = {"req_key": "jimeng_t2i_v30", "prompt": prompt, "seed": rng.randint(0, MAX_SEED)}
    body = json.dumps(fields, ensure_ascii=rng.random() < 0.5).encode()
    date = datetime(2015, 1, 1) + timedelta(seconds=rng.randint(0, 20 * 365 * 86400))
    return {
        "method": rng.choice(["POST", "GET", "PUT"]),
        "host": headers["Host"],
        "path": rng.choice(["/", "/v1/images", "/a b/ç+~", "/" + random_text(rng).replace("/", "")]),
        "query": query,
        "headers": headers,
        "body": body if rng.random() < 0.9 else b"",
        "access_key": "AKLT" + "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(8, 40))),
        "secret_key": random_text(rng, 8, 48),
        "region": rng.choice(["cn-north-1", "cn-beijing", "ap-southeast-1"]),
        "service": rng.choice(["cv", "visual", "ark"]),
        "date": date,
    }


def official_signature(case: dict) -> tuple[str, str]:
    """(Authorization, X-Content-Sha256) from the official SDK's signer, for a fixed date."""
    signer = pytest.importorskip("volcengine.auth.SignerV4")
    from volcengine.auth.SignParam import SignParam
    from volcengine.Credentials import Credentials

    param = SignParam()
    param.set_method(case["method"])
    param.set_host(case["host"])
    param.set_path(case["path"])
    param.set_query(OrderedDict(case["query"]))
    param.set_header_list(OrderedDict(case["headers"]))  # the SDK adds its X- headers in place
    param.set_body(case["body"])
    param.set_date(case["date"])
    credentials = Credentials(case["access_key"], case["secret_key"], case["service"], case["region"])
    result = signer.SignerV4.sign_only(param, credentials)
    return result.authorization, result.xContextSha256


@pytest.mark.parametrize("case_number", range(50))
def test_the_signer_matches_the_official_sdk_byte_for_byte(case_number):
    case = random_case(random.Random(f"volc-signer-{case_number}"))
    ours = sign_request(
        case["method"],
        case["host"],
        case["path"],
        case["query"],
        dict(case["headers"]),
        case["body"],
        access_key=case["access_key"],
        secret_key=case["secret_key"],
        region=case["region"],
        service=case["service"],
        x_date=case["date"].strftime("%Y%m%dT%H%M%SZ"),
    )
    authorization, content_sha256 = official_signature(case)
    assert ours["Authorization"] == authorization
    assert ours["X-Content-Sha256"] == content_sha256


# --- a stand-in for the service --------------------------------------------------------------


def png(color: str = "teal", size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ok(data: dict, request_id: str = "req-ok") -> tuple[int, dict]:
    envelope = {"code": 10000, "data": data, "message": "Success", "request_id": request_id, "status": 10000}
    return 200, {**envelope, "time_elapsed": "1.27s"}


def failure(http_status: int, code: int, message: str, request_id: str = "req-err") -> tuple[int, dict]:
    return http_status, {"code": code, "data": None, "message": message, "request_id": request_id, "status": code}


def gateway(http_status: int, code: str, message: str = "refused") -> tuple[int, dict]:
    metadata = {"RequestId": "gw-req-1", "Action": "CVProcess", "Version": VERSION, "Service": "cv"}
    error = {"Code": code, "Message": message}
    return http_status, {"ResponseMetadata": {**metadata, "Region": "cn-north-1", "Error": error}}


def polled(status: str, **images) -> tuple[int, dict]:
    return ok({"status": status, "binary_data_base64": [], "image_urls": None, **images}, "req-poll")


class FakeVolc:
    """Answers per Action from a script, and checks that every request is signed as
    sign_request would sign exactly what arrived. The last answer of an action repeats.
    An answer is (status, body) or (status, body, headers).
    """

    def __init__(self) -> None:
        self.script: dict[str, list] = {}
        self.received: list[tuple[str, dict, Request]] = []
        self.signature_problems: list[str] = []

    def on(self, action: str, *answers) -> FakeVolc:
        self.script[action] = list(answers)
        return self

    def bodies(self, action: str) -> list[dict]:
        return [body for name, body, _ in self.received if name == action]

    def __call__(self, request: Request) -> Response:
        action = request.args.get("Action", "")
        raw = request.get_data()
        self.check_signature(request, raw)
        self.received.append((action, json.loads(raw), request))
        answers = self.script.get(action) or [(404, "no script")]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer()
        status, body, *headers = answer
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=status, content_type="application/json", headers=headers[0] if headers else None)

    def check_signature(self, request: Request, raw: bytes) -> None:
        host = request.headers["Host"]
        expected = sign_request(
            request.method,
            host,
            request.path,
            request.args.to_dict(flat=False),
            {"Host": host, "Content-Type": request.headers["Content-Type"]},
            raw,
            access_key=AK,
            secret_key=SK,
            region="cn-north-1",
            service="cv",
            x_date=request.headers.get("X-Date", ""),
        )
        for name, value in expected.items():
            if request.headers.get(name) != value:
                self.signature_problems.append(f"{name}: {request.headers.get(name)!r} != {value!r}")
        if f"SignedHeaders={SIGNED}," not in request.headers.get("Authorization", ""):
            self.signature_problems.append("SignedHeaders")


@pytest.fixture
def volc(httpserver, configure_provider):
    """configure(**values) -> (provider, fake service) with BASE_URL at the stand-in.
    Every request any test sends must carry a valid signature.
    """
    fakes: list[FakeVolc] = []

    def configure(**values):
        defaults = {
            "ACCESS_KEY": AK,
            "SECRET_KEY": SK,
            "BASE_URL": httpserver.url_for("/"),
            "SELF_HOSTED": True,
            "POLL_INTERVAL_SECONDS": 0.01,
            "TIMEOUT_SECONDS": 2.0,
        }
        provider = configure_provider("volcengine", **{**defaults, **values})
        fake = FakeVolc()
        fakes.append(fake)
        httpserver.expect_request("/", method="POST").respond_with_handler(fake)
        return provider, fake

    yield configure
    assert [problem for fake in fakes for problem in fake.signature_problems] == []


def run(user, **fields) -> Task:
    values = {"provider": "volcengine", "model": "high_aes_general_v21_L", "width": 512, "height": 512, **fields}
    task = TaskFactory(owner=user, **values)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def assert_failed(task: Task, code: str, media_root: Path, *, attempts: int = 1) -> None:
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, code, attempts), task.error_message
    assert "{" not in task.error_message and "Traceback" not in task.error_message
    assert not Image.objects.filter(task=task).exists()
    assert files_under(media_root) == []


def test_the_stand_in_notices_a_request_signed_with_another_secret(volc, user):
    _, fake = volc(SECRET_KEY="not-the-secret-the-service-knows")
    fake.on("CVProcess", ok({"binary_data_base64": [b64(png())]}))
    run(user)
    assert [problem.split(":")[0] for problem in fake.signature_problems] == ["Authorization"]
    fake.signature_problems.clear()


def test_the_provider_module_does_not_use_the_sdk_at_run_time():
    source = (Path(__file__).parents[1] / "generator" / "providers" / "volcengine.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "volcengine" not in imported


def test_the_provider_cites_the_notes_kept_in_the_repository():
    source = (Path(__file__).parents[1] / "generator" / "providers" / "volcengine.py").read_text()
    assert "/work/shared" not in source and "docs/reference/" in source
    assert (REFERENCE / "providers.md").is_file() and (REFERENCE / "provider-audit.md").is_file()


# --- configuration and models ------------------------------------------------------------------


def test_it_is_offered_only_with_both_keys(configure_provider):
    assert configure_provider("volcengine") is None
    assert configure_provider("volcengine", ACCESS_KEY=AK) is None
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK)
    assert provider is not None and provider.label == "VolcEngine (Jimeng)"
    assert provider.download_policy.allow_private is False  # result links must be public https


def test_by_default_it_offers_the_jimeng_image_models_sold_now(configure_provider):
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK)
    assert [m.id for m in provider.models()] == list(DEFAULT_MODELS)
    assert DEFAULT_MODELS == ("jimeng_seedream46_cvtob", "jimeng_t2i_v40", "jimeng_t2i_v31")
    v46, v40, v31 = provider.models()
    assert (v46.label, v40.label, v31.label) == ("Jimeng 4.6 (即梦4.6)", "Jimeng 4.0 (即梦4.0)", "Jimeng 3.1 (即梦3.1)")
    for model in provider.models():
        assert model.max_images == 4 and not model.supports_negative_prompt
        assert not model.supports_steps and not model.supports_guidance
        assert provider.runs_as_job(GenerationRequest(prompt="p", model=model.id, width=2048, height=2048))


@pytest.mark.parametrize("req_key", ["jimeng_seedream46_cvtob", "jimeng_t2i_v40"])
def test_jimeng_4_x_is_bounded_by_area_and_shape_as_its_page_says(configure_provider, req_key):
    # volcengine.com/docs/85621/2275082 (4.6) and /1817045 (4.0): width×height in [1024², 4096²],
    # width/height within the default min_ratio 1/3 and max_ratio 3; no seed field.
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, MODELS=[req_key])
    [model] = provider.models()
    assert (model.min_pixels, model.max_pixels, model.max_aspect_ratio) == (1024**2, 4096**2, 3.0)
    # The side limits follow, in multiples of 8: 7080×2360 is the longest 3:1 picture of at most
    # 4096², 592×1776 the narrowest of at least 1024².
    assert (model.min_size, model.max_size) == (592, 7080)
    assert not model.supports_seed  # neither page documents one
    for width, height in [(1024, 1024), (2048, 2048), (4096, 4096), (2560, 1440), (3024, 1296), (7080, 2360)]:
        assert model.size_error(width, height) is None, (width, height)
    assert model.size_error(1776, 592) is None  # the narrowest 3:1 picture of at least 1024²
    assert "at least" in model.size_error(1000, 1000) and "at most" in model.size_error(4104, 4096)
    assert "aspect ratio" in model.size_error(3200, 1024)


def test_jimeng_3_x_is_bounded_by_area_and_shape_and_takes_a_seed(configure_provider):
    # volcengine.com/docs/85621/1756900: width×height in [512², 2048²], ratio 1:3 to 3:1, seed -1 random.
    provider = configure_provider(
        "volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, MODELS=["jimeng_t2i_v31", "jimeng_t2i_v30"]
    )
    for model in provider.models():
        assert (model.min_pixels, model.max_pixels, model.max_aspect_ratio) == (512**2, 2048**2, 3.0)
        assert (model.min_size, model.max_size) == (296, 3536)
        assert model.supports_seed and model.max_seed == MAX_SEED == 2**31 - 1
        for width, height in [
            (1328, 1328),
            (1664, 936),
            (2016, 864),
            (2048, 2048),
            (3024, 1296),
            (3536, 1184),
            (296, 888),
        ]:
            assert model.size_error(width, height) is None, (width, height)
        assert "at least" in model.size_error(504, 512) and "at most" in model.size_error(2056, 2048)
        assert "aspect ratio" in model.size_error(1600, 512)


def test_the_legacy_2_x_models_can_still_be_listed_with_their_limits(configure_provider):
    listed = ["high_aes_general_v21_L", "high_aes_general_v20_L", "jimeng_high_aes_general_v21_L"]
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, MODELS=listed)
    general21, general20, jimeng21 = provider.models()
    assert general20.label == "General 2.0 Pro (通用2.0 Pro)" and jimeng21.label == "Jimeng 2.1 (即梦2.1)"
    for model in provider.models():
        assert (model.min_size, model.max_size) == (256, 768) and model.supports_seed
        assert model.size_error(768, 256) is None and model.size_error(776, 512)
        assert not provider.runs_as_job(GenerationRequest(prompt="p", model=model.id, width=512, height=512))
    assert general21.supports_steps and general21.supports_guidance and general20.supports_steps
    assert not jimeng21.supports_steps and not jimeng21.supports_guidance


def test_an_unknown_req_key_gets_its_familys_documented_limits(configure_provider):
    listed = ["jimeng_seedream50_cvtob", "jimeng_t2i_v32", "high_aes_general_v22_L", "jimeng_t2i_v31"]
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, MODELS=listed)
    future4, future3, future2, v31 = provider.models()
    assert [m.id for m in provider.models()] == listed and future4.label == "jimeng_seedream50_cvtob"
    # A key of no known family is taken for the current one, 4.x: its general limits, not the smallest.
    assert (future4.min_pixels, future4.max_pixels, future4.max_aspect_ratio) == (1024**2, 4096**2, 3.0)
    assert future4.size_error(4096, 4096) is None and not future4.supports_seed
    assert (future3.min_pixels, future3.max_pixels, future3.supports_seed) == (512**2, 2048**2, True)
    assert (future2.min_size, future2.max_size, future2.min_pixels) == (256, 768, None)
    assert v31.label == "Jimeng 3.1 (即梦3.1)"
    for model in provider.models():
        assert not model.supports_steps and not model.supports_guidance and not model.supports_negative_prompt
        assert provider.runs_as_job(GenerationRequest(prompt="p", model=model.id, width=512, height=512))


# --- synchronous models (CVProcess) -------------------------------------------------------------


def test_a_2x_model_sends_one_signed_cvprocess_call_per_image_with_consecutive_seeds(volc, user, media_root):
    _, fake = volc()
    both = ok({"binary_data_base64": [b64(png("red"))], "image_urls": ["https://cdn.invalid/1"]}, "req-a")
    fake.on("CVProcess", both, ok({"binary_data_base64": [b64(png("blue"))]}, "req-b"))
    task = run(
        user,
        prompt="千军万马 on a hill + fog",
        negative_prompt="blurry",
        width=512,
        height=384,
        num_images=2,
        seed=42,
        steps=30,
        guidance_scale=4.0,
    )
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert fake.signature_problems == []
    assert [name for name, _, _ in fake.received] == ["CVProcess", "CVProcess"]
    first = fake.bodies("CVProcess")[0]
    assert first == {
        "req_key": "high_aes_general_v21_L",
        "prompt": "千军万马 on a hill + fog",
        "seed": 42,
        "width": 512,
        "height": 384,
        "model_version": "general_v2.1_L",
        "req_schedule_conf": "general_v20_9B_pe",
        "use_sr": False,
        "ddim_steps": 30,
        "scale": 4.0,
        "return_url": True,
    }
    assert fake.bodies("CVProcess")[1] == {**first, "seed": 43}
    request = fake.received[0][2]
    assert request.method == "POST" and request.path == "/"
    assert request.query_string == b"Action=CVProcess&Version=2022-08-31"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith(f"HMAC-SHA256 Credential={AK}/")
    assert "/cn-north-1/cv/request, SignedHeaders=" in request.headers["Authorization"]
    assert "千军万马".encode() in request.get_data()  # sent as UTF-8, and that is what was hashed
    images = task.ordered_images
    assert [image.seed for image in images] == [42, 43]
    assert [PILImage.open(image.file.path).getpixel((0, 0)) for image in images] == [(255, 0, 0), (0, 0, 255)]
    assert task.provider_request_id == "req-a"
    assert len(files_under(media_root)) == 4


def test_jimeng_2_1_gets_no_model_version_steps_or_scale(volc, user):
    _, fake = volc(MODELS=["jimeng_high_aes_general_v21_L"])
    fake.on("CVProcess", ok({"binary_data_base64": [b64(png())]}))
    task = run(user, model="jimeng_high_aes_general_v21_L", prompt="tea house", seed=5, steps=40, guidance_scale=9.0)
    assert task.status == Task.Status.COMPLETED, task.error_message
    [body] = fake.bodies("CVProcess")
    assert body == {
        "req_key": "jimeng_high_aes_general_v21_L",
        "prompt": "tea house",
        "seed": 5,
        "width": 512,
        "height": 512,
        "use_sr": False,
        "return_url": True,
    }


def test_without_a_seed_it_sends_a_random_one_and_records_it(volc, user):
    _, fake = volc()
    fake.on("CVProcess", ok({"binary_data_base64": [b64(png())]}))
    task = run(user, seed=None, num_images=2)
    assert task.status == Task.Status.COMPLETED, task.error_message
    first, second = (body["seed"] for body in fake.bodies("CVProcess"))
    assert 0 <= first <= MAX_SEED and second == (first + 1) % (MAX_SEED + 1)
    assert [image.seed for image in task.ordered_images] == [first, second]


def test_seeds_wrap_around_at_the_models_maximum(volc):
    provider, fake = volc()
    fake.on("CVProcess", ok({"binary_data_base64": [b64(png())]}))
    request = GenerationRequest(prompt="p", model="high_aes_general_v21_L", width=512, height=512, num_images=2)
    assert [result.seed for result in provider.generate(dataclasses.replace(request, seed=MAX_SEED))] == [MAX_SEED, 0]


def test_an_image_link_is_fetched_from_a_self_hosted_stand_in(volc, httpserver, user, media_root):
    _, fake = volc(SELF_HOSTED=True)
    httpserver.expect_request("/result/1.png").respond_with_data(png("green"), content_type="image/png")
    fake.on("CVProcess", ok({"binary_data_base64": [], "image_urls": [httpserver.url_for("/result/1.png")]}))
    task = run(user)
    assert task.status == Task.Status.COMPLETED, task.error_message
    [image] = task.ordered_images
    assert PILImage.open(image.file.path).getpixel((0, 0)) == (0, 128, 0)


def test_an_image_link_to_a_private_address_is_refused(volc, httpserver, user, media_root):
    _, fake = volc(SELF_HOSTED=False)
    fake.on("CVProcess", ok({"binary_data_base64": [], "image_urls": [httpserver.url_for("/result/1.png")]}))
    task = run(user)
    assert_failed(task, "unsafe_image_url", media_root)
    assert not any(request.path == "/result/1.png" for request, _ in httpserver.log)


def test_a_base_url_with_a_path_prefix_is_signed_over_that_path(httpserver, configure_provider):
    fake = FakeVolc().on("CVProcess", ok({"binary_data_base64": [b64(png())]}))
    httpserver.expect_request("/volc/", method="POST").respond_with_handler(fake)
    base_url = httpserver.url_for("/volc")
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, BASE_URL=base_url, SELF_HOSTED=True)
    request = GenerationRequest(prompt="p", model="high_aes_general_v21_L", width=512, height=512, seed=1)
    [result] = provider.generate(request)
    assert result.data and fake.received[0][2].path == "/volc/"
    assert fake.signature_problems == []


# --- asynchronous models (CVSync2AsyncSubmitTask + CVSync2AsyncGetResult) ------------------------


def test_jimeng_3_submits_then_polls_until_done(volc, user, media_root):
    _, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "7392616336519610409"}, "req-submit"))
    done = polled("done", binary_data_base64=[b64(png("purple"))])
    fake.on("CVSync2AsyncGetResult", polled("in_queue"), polled("generating"), done)
    task = run(user, model="jimeng_t2i_v30", prompt="a koi pond", width=1328, height=1024, seed=9, guidance_scale=7.0)
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert fake.signature_problems == []
    assert [name for name, _, _ in fake.received] == ["CVSync2AsyncSubmitTask"] + ["CVSync2AsyncGetResult"] * 3
    assert fake.bodies("CVSync2AsyncSubmitTask") == [
        {"req_key": "jimeng_t2i_v30", "prompt": "a koi pond", "seed": 9, "width": 1328, "height": 1024}
    ]
    for poll in fake.bodies("CVSync2AsyncGetResult"):
        assert poll.keys() == {"req_key", "task_id", "req_json"}
        assert (poll["req_key"], poll["task_id"]) == ("jimeng_t2i_v30", "7392616336519610409")
        assert json.loads(poll["req_json"]) == {"return_url": True}  # a JSON-encoded string, not an object
    assert fake.received[-1][2].query_string == b"Action=CVSync2AsyncGetResult&Version=2022-08-31"
    assert task.provider_request_id == "req-poll"
    [image] = task.ordered_images
    assert image.seed == 9 and PILImage.open(image.file.path).getpixel((0, 0)) == (128, 0, 128)


@pytest.mark.parametrize("req_key", ["jimeng_seedream46_cvtob", "jimeng_t2i_v40"])
def test_jimeng_4_x_asks_for_a_single_picture_sends_no_seed_and_may_answer_with_a_link(volc, httpserver, user, req_key):
    _, fake = volc(MODELS=[req_key])
    httpserver.expect_request("/v4.png").respond_with_data(png("navy"), content_type="image/png")
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-4"}))
    fake.on("CVSync2AsyncGetResult", polled("done", image_urls=[httpserver.url_for("/v4.png")]))
    task = run(user, model=req_key, width=2048, height=1152, seed=None, num_images=2)
    assert task.status == Task.Status.COMPLETED, task.error_message
    # force_single: otherwise one job may make (and bill) up to 15 pictures. No seed: none is documented.
    expected = {"req_key": req_key, "prompt": task.prompt, "width": 2048, "height": 1152, "force_single": True}
    assert fake.bodies("CVSync2AsyncSubmitTask") == [expected, expected]
    assert [image.seed for image in task.ordered_images] == [None, None]


def test_a_saved_4_x_job_without_a_seed_is_looked_at_again(volc):
    provider, fake = volc(MODELS=["jimeng_seedream46_cvtob"])
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    request = GenerationRequest(prompt="p", model="jimeng_seedream46_cvtob", width=2048, height=2048, seed=7)
    state = provider.submit(request, lambda state: None)
    assert state == {
        "req_key": "jimeng_seedream46_cvtob",
        "jobs": [{"task_id": "t-1", "seed": None}],
        "count": 1,
        "first_seed": None,
    }
    fake.on("CVSync2AsyncGetResult", polled("done", binary_data_base64=[b64(png())]))
    check = provider.check_job(request, json.loads(json.dumps(state)), must_not_save)
    assert check.finished and [image.seed for image in check.images] == [None]
    assert "seed" not in fake.bodies("CVSync2AsyncSubmitTask")[0]


def test_progress_rises_as_the_pictures_jobs_move_through_queue_and_generation(volc):
    # The jobs of all pictures are submitted first and then run side by side; progress is their average.
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}), ok({"task_id": "t-2"}))
    queued, working, done = polled("in_queue"), polled("generating"), polled("done", binary_data_base64=[b64(png())])
    # One GetResult per job per look: (t-1, t-2) in each pair.
    fake.on("CVSync2AsyncGetResult", queued, queued, working, queued, working, working, done, working, done, done)
    seen: list[int] = []
    request = GenerationRequest(prompt="p", model="jimeng_t2i_v30", width=512, height=512, num_images=2, seed=1)
    results = provider.generate(request, progress=seen.append)
    assert [result.extra for result in results] == [{"task_id": "t-1"}, {"task_id": "t-2"}]
    assert all(result.data for result in results) and [result.seed for result in results] == [1, 2]
    assert seen == [10, 30, 45, 60, 80, 100]
    assert len(fake.bodies("CVSync2AsyncSubmitTask")) == 2


def test_a_finished_job_whose_picture_failed_moderation_is_output_rejected(volc, user, media_root):
    _, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    status, rejected = failure(400, 50511, "Post Img Risk Not Pass", request_id="req-risk")
    fake.on("CVSync2AsyncGetResult", (status, {**rejected, "data": {"status": "done"}}))
    task = run(user, model="jimeng_t2i_v30")
    assert_failed(task, "output_rejected", media_root)
    assert "another seed" in task.error_message and task.provider_request_id == "req-risk"


@pytest.mark.parametrize("status", ["not_found", "expired"])
def test_a_vanished_job_ends_the_task_as_expired(volc, user, media_root, status):
    _, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    fake.on("CVSync2AsyncGetResult", polled(status))
    task = run(user, model="jimeng_t2i_v30")
    assert_failed(task, "task_expired", media_root)


def test_a_done_job_with_an_unknown_code_is_a_failed_generation(volc, user, media_root):
    _, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    _, odd = failure(200, 61234, "Odd failure")
    fake.on("CVSync2AsyncGetResult", (200, {**odd, "data": {"status": "done"}}))
    task = run(user, model="jimeng_t2i_v30")
    assert_failed(task, "generation_failed", media_root)
    assert "(Odd failure)" in task.error_message


def test_a_job_that_never_finishes_times_out_is_canceled_and_never_resubmitted(volc, user, media_root, settings):
    # A second submission would run beside the first and hold another concurrency slot (audit V1).
    settings.PROVIDER_MAX_ATTEMPTS = 3
    _, fake = volc(POLL_DEADLINE_SECONDS=0.05)
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    fake.on("CVSync2AsyncGetResult", polled("generating"))
    started = time.monotonic()
    task = run(user, model="jimeng_t2i_v30")
    assert_failed(task, "timeout", media_root, attempts=1)
    assert len(fake.bodies("CVSync2AsyncSubmitTask")) == 1
    assert fake.bodies("CVCancelTask") == [{"req_key": "jimeng_t2i_v30", "task_id": "t-1"}]
    assert time.monotonic() - started < 2


# --- vendor jobs step by step, as the scheduler drives them (submit / check_job / cancel_job) ---------


def jimeng_request(**fields) -> GenerationRequest:
    values = {"prompt": "p", "model": "jimeng_t2i_v30", "width": 1328, "height": 1328, "num_images": 3, "seed": 5}
    return GenerationRequest(**{**values, **fields})


def three_jobs(saved: int = 3) -> dict:
    jobs = [{"task_id": f"t-{i + 1}", "seed": 5 + i} for i in range(saved)]
    return {"req_key": "jimeng_t2i_v30", "jobs": jobs, "count": 3, "first_seed": 5}


def must_not_save(state: dict) -> None:
    raise AssertionError(f"saved {state!r} although every job was already saved")


@pytest.mark.parametrize(
    ("model", "as_job"),
    [
        ("jimeng_t2i_v30", True),
        ("jimeng_t2i_v31", True),
        ("jimeng_t2i_v40", True),
        ("some_future_key", True),
        ("high_aes_general_v21_L", False),
        ("high_aes_general_v20_L", False),
        ("jimeng_high_aes_general_v21_L", False),
    ],
)
def test_the_asynchronous_models_run_as_jobs_and_cvprocess_ones_do_not(volc, model, as_job):
    provider, _ = volc()
    assert provider.runs_as_job(jimeng_request(model=model)) is as_job


def test_submit_sends_one_job_per_picture_and_saves_after_each(volc, httpserver):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}), ok({"task_id": "t-2"}), ok({"task_id": "t-3"}))
    saved: list[dict] = []
    state = provider.submit(jimeng_request(), saved.append)
    assert state == three_jobs()
    assert [len(each["jobs"]) for each in saved] == [1, 2, 3] and saved[-1] == state
    json.dumps(state)  # kept on the task as JSON
    assert [body["seed"] for body in fake.bodies("CVSync2AsyncSubmitTask")] == [5, 6, 7]
    assert [name for name, _, _ in fake.received] == ["CVSync2AsyncSubmitTask"] * 3  # no waiting for results
    assert len(httpserver.log) == 3


def test_submit_without_a_seed_picks_one_and_records_it(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    state = provider.submit(jimeng_request(seed=None, num_images=2), lambda state: None)
    first = state["first_seed"]
    assert 0 <= first <= MAX_SEED and [job["seed"] for job in state["jobs"]] == [first, (first + 1) % (MAX_SEED + 1)]


def test_a_throttled_submission_after_the_first_leaves_that_one_saved(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}), failure(429, 50429, "Request Has Reached API Limit"))
    saved: list[dict] = []
    with pytest.raises(TransientProviderError) as raised:
        provider.submit(jimeng_request(), saved.append)
    assert raised.value.code == "rate_limited"
    assert saved == [three_jobs(saved=1)]


def test_check_job_submits_only_the_pictures_a_dead_worker_left_unsubmitted(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-2"}), ok({"task_id": "t-3"}))
    fake.on("CVSync2AsyncGetResult", polled("in_queue"))
    saved: list[dict] = []
    check = provider.check_job(jimeng_request(), three_jobs(saved=1), saved.append)
    assert [body["seed"] for body in fake.bodies("CVSync2AsyncSubmitTask")] == [6, 7]
    assert [len(each["jobs"]) for each in saved] == [2, 3] and saved[-1] == three_jobs()
    assert [body["task_id"] for body in fake.bodies("CVSync2AsyncGetResult")] == ["t-1", "t-2", "t-3"]
    assert (check.finished, check.progress) == (False, 30)


def test_check_job_makes_one_status_call_per_job_and_averages_the_progress(volc):
    provider, fake = volc()
    fake.on(
        "CVSync2AsyncGetResult",
        polled("in_queue"),
        polled("generating"),
        polled("done", binary_data_base64=[b64(png())]),
    )
    check = provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (check.finished, check.progress, check.images) == (False, (30 + 60 + 100) // 3, [])
    assert [name for name, _, _ in fake.received] == ["CVSync2AsyncGetResult"] * 3


def test_check_job_returns_every_picture_once_all_jobs_are_done(volc, httpserver):
    provider, fake = volc()
    httpserver.expect_request("/t-3.png").respond_with_data(png("navy"), content_type="image/png")
    fake.on(
        "CVSync2AsyncGetResult",
        polled("done", binary_data_base64=[b64(png("red"))]),
        polled("done", binary_data_base64=[b64(png("blue"))]),
        polled("done", image_urls=[httpserver.url_for("/t-3.png")]),
    )
    check = provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (check.finished, check.failed) == (True, 0)
    assert [image.seed for image in check.images] == [5, 6, 7]
    assert [image.extra for image in check.images] == [{"task_id": "t-1"}, {"task_id": "t-2"}, {"task_id": "t-3"}]
    assert check.images[0].data == png("red") and check.images[1].data == png("blue")
    assert check.images[2].data is None and check.images[2].url == httpserver.url_for("/t-3.png")
    assert fake.bodies("CVSync2AsyncSubmitTask") == []


def test_a_job_whose_picture_failed_is_counted_when_another_succeeded(volc):
    provider, fake = volc()
    status, rejected = failure(400, 50511, "Post Img Risk Not Pass")
    done = polled("done", binary_data_base64=[b64(png())])
    fake.on("CVSync2AsyncGetResult", done, (status, {**rejected, "data": {"status": "done"}}), done)
    check = provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (check.finished, check.failed) == (True, 1)
    assert [image.seed for image in check.images] == [5, 7]


def test_a_job_that_ended_in_an_internal_error_is_failed_not_looked_at_forever(volc):
    # "done" with a failing code is the job's own outcome: looking again would find the same.
    provider, fake = volc()
    status, internal = failure(500, 50500, "Internal Error", request_id="req-500")
    fake.on("CVSync2AsyncGetResult", (status, {**internal, "data": {"status": "done"}}))
    with pytest.raises(PermanentProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (raised.value.code, raised.value.request_id) == ("generation_failed", "req-500")
    assert "(Internal Error)" in raised.value.message
    assert len(fake.bodies("CVSync2AsyncGetResult")) == 3


def test_jobs_that_all_failed_raise_the_first_failure(volc):
    provider, fake = volc()
    status, rejected = failure(400, 50511, "Post Img Risk Not Pass", request_id="req-risk")
    fake.on("CVSync2AsyncGetResult", (status, {**rejected, "data": {"status": "done"}}))
    with pytest.raises(PermanentProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert raised.value.code == "output_rejected" and raised.value.request_id == "req-risk"


def test_a_failed_job_waits_for_the_others_before_the_outcome_is_decided(volc):
    provider, fake = volc()
    status, rejected = failure(400, 50511, "Post Img Risk Not Pass")
    fake.on("CVSync2AsyncGetResult", (status, {**rejected, "data": {"status": "done"}}), polled("generating"))
    check = provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (check.finished, check.progress) == (False, (100 + 60 + 60) // 3)


@pytest.mark.parametrize(
    ("answer", "code", "wait"),
    [
        (failure(429, 50429, "Request Has Reached API Limit, Please Try Later"), "rate_limited", None),
        ((*failure(429, 50430, "Request Has Reached API Concurrent Limit"), {"Retry-After": "7"}), "rate_limited", 7),
        (failure(500, 50500, "Internal Error"), "provider_unavailable", None),
        ((*gateway(429, "FlowLimitExceeded"), {"Retry-After": "3"}), "rate_limited", 3),
        ((503, "<html>busy</html>", {"Retry-After": "12"}), "provider_unavailable", 12),
    ],
)
def test_a_transient_status_failure_raises_and_submits_nothing(volc, answer, code, wait):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", answer)
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert (raised.value.code, raised.value.retry_after) == (code, wait)
    assert fake.bodies("CVSync2AsyncSubmitTask") == []
    assert len(fake.bodies("CVSync2AsyncGetResult")) == 1  # the round stops at the first passing failure


def test_a_dropped_connection_on_a_status_call_is_transient(configure_provider):
    unreachable = {"BASE_URL": "http://127.0.0.1:9", "TIMEOUT_SECONDS": 0.5}
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, **unreachable)
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert raised.value.code == "connection_error"


@pytest.mark.parametrize("status", ["not_found", "expired"])
def test_check_job_reports_a_vanished_job_as_expired(volc, status):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", polled(status))
    with pytest.raises(PermanentProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert raised.value.code == "task_expired"


def test_cancel_job_asks_to_cancel_every_job(volc):
    provider, fake = volc()
    fake.on("CVCancelTask", ok({}))
    provider.cancel_job(three_jobs())
    assert fake.bodies("CVCancelTask") == [{"req_key": "jimeng_t2i_v30", "task_id": f"t-{i}"} for i in (1, 2, 3)]
    request = fake.received[0][2]
    assert request.query_string == b"Action=CVCancelTask&Version=2024-06-06"


@pytest.mark.parametrize(
    "answer", [(404, "no such action"), gateway(404, "InvalidActionOrVersion"), failure(500, 50500, "Internal Error")]
)
def test_cancel_job_swallows_every_failure(volc, answer):
    provider, fake = volc()
    fake.on("CVCancelTask", answer)
    provider.cancel_job(three_jobs())
    assert len(fake.bodies("CVCancelTask")) == 3  # one refusal does not stop the others
    provider.cancel_job({})  # nothing saved: nothing to cancel
    provider.cancel_job({"jobs": "garbled"})
    assert len(fake.bodies("CVCancelTask")) == 3


def test_cancel_job_swallows_an_unreachable_host(configure_provider):
    unreachable = {"BASE_URL": "http://127.0.0.1:9", "TIMEOUT_SECONDS": 0.5}
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, **unreachable)
    provider.cancel_job(three_jobs())


def test_a_passing_failure_while_generate_polls_does_not_resubmit(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}))
    done = polled("done", binary_data_base64=[b64(png())])
    fake.on("CVSync2AsyncGetResult", failure(429, 50429, "Request Has Reached API Limit"), polled("generating"), done)
    [result] = provider.generate(jimeng_request(num_images=1))
    assert result.data and result.seed == 5
    assert len(fake.bodies("CVSync2AsyncSubmitTask")) == 1


# --- errors ------------------------------------------------------------------------------------

SERVICE_ERRORS = [
    # The business error table on the Jimeng image pages (/2275082, /1817045, /1756900).
    (400, 50411, "Pre Img Risk Not Pass", "content_rejected", False),
    (400, 50412, "Text Risk Not Pass", "content_rejected", False),
    (400, 50413, "Post Text Risk Not Pass", "content_rejected", False),
    (400, 50518, "Pre Img Risk Not Pass: Copyright", "content_rejected", False),
    (400, 50511, "Post Img Risk Not Pass", "output_rejected", False),
    (400, 50512, "Post Text Risk Not Pass", "output_rejected", False),
    (400, 50519, "Post Img Risk Not Pass: Copyright", "output_rejected", False),
    (400, 50520, "Risk Internal Error", "generation_failed", False),
    (400, 50521, "Antidirt Internal Error", "generation_failed", False),
    (400, 50522, "Image Copyright Internal Error", "generation_failed", False),
    (429, 50429, "Request Has Reached API Limit, Please Try Later", "rate_limited", True),
    (429, 50430, "Request Has Reached API Concurrent Limit, Please Try Later", "rate_limited", True),
    (500, 50500, "Internal Error", "provider_unavailable", True),
    (500, 50501, "Internal RPC Error", "provider_unavailable", True),
    (400, 50215, "Input invalid for this service.", "invalid_request", False),
    # The account: keys without the service, or a req_key it has not activated.
    (401, 50400, "Access Denied: Internal Error", "permission_denied", False),
    # Not in the table: by the HTTP status.
    (400, 50999, "Something else", "invalid_request", False),
]


@pytest.mark.parametrize("http_status, code, message, our_code, transient", SERVICE_ERRORS)
def test_service_error_codes_end_the_task_as_documented(
    volc, user, media_root, settings, http_status, code, message, our_code, transient
):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    _, fake = volc()
    fake.on("CVProcess", failure(http_status, code, message, request_id="req-50"))
    task = run(user)
    assert_failed(task, our_code, media_root, attempts=2 if transient else 1)
    assert len(fake.received) == (2 if transient else 1)
    assert task.provider_request_id == "req-50"
    if our_code == "content_rejected":
        assert task.error_message == "The provider rejected this prompt as sensitive content."
    if our_code in ("invalid_request", "permission_denied"):
        assert f"({message.rstrip('.')})" in task.error_message
    if code == 50400:
        assert "not activated" in task.error_message


def test_50400_is_an_account_problem_not_a_bad_request():
    error = vendor_error(ERROR_TABLE[50400], detail="Access Denied: Internal Error")
    assert (error.code, error.kind, error.transient) == ("permission_denied", Kind.ACCOUNT, False)


@pytest.mark.parametrize("code", list(ERROR_TABLE))
def test_every_vendor_code_is_classified_once_with_its_source(code):
    entry = ERROR_TABLE[code]
    assert entry.key in MESSAGES and entry.source
    assert entry.kind in (Kind.TRANSIENT, Kind.ACCOUNT, Kind.CONTENT, Kind.REQUEST, Kind.PROVIDER)
    assert entry.vendor_retry in ("retry", "no retry", "")
    error = vendor_error(entry, detail="words", request_id="r-1")
    assert error.kind is entry.kind and error.code == code_of(entry.key) and error.request_id == "r-1"
    assert error.transient is (entry.kind is Kind.TRANSIENT)


def test_the_table_holds_every_code_of_the_jimeng_pages_and_the_gateways_common_ones():
    jimeng = {50411, 50412, 50413, 50511, 50512, 50518, 50519, 50520, 50521, 50522, 50429, 50430, 50500, 50501}
    gateway = {
        "MissingParameter",
        "MissingAuthenticationToken",
        "MissingRequestInfo",
        "MissingSignature",
        "InvalidTimestamp",
        "ServiceNotFound",
        "InvalidActionOrVersion",
        "InvalidAccessKey",
        "SignatureDoesNotMatch",
        "LackPolicy",
        "AccessDenied",
        "InternalError",
        "FailToConnect",
        "InternalServiceTimeout",
        "FlowLimitExceeded",
        "ServiceUnavailableTemp",
        "InternalServiceError",
    }
    assert jimeng | gateway | {50215, 50400} <= set(ERROR_TABLE)
    kinds = {code: ERROR_TABLE[code].kind for code in ERROR_TABLE}
    assert {kinds[50429], kinds[50430], kinds["FlowLimitExceeded"]} == {Kind.TRANSIENT}
    assert {kinds[code] for code in (50411, 50412, 50413, 50511, 50512, 50518, 50519)} == {Kind.CONTENT}
    assert {kinds[code] for code in (50400, "AccessDenied", "SignatureDoesNotMatch", "InvalidTimestamp")} == {
        Kind.ACCOUNT
    }


GATEWAY_ERRORS = [
    (401, "SignatureDoesNotMatch", "authentication_failed", False),
    (401, "InvalidAccessKey", "authentication_failed", False),
    (401, "MissingAuthenticationToken", "authentication_failed", False),
    (401, "InvalidSecretToken", "authentication_failed", False),
    (400, "InvalidTimestamp", "authentication_failed", False),
    (403, "AccessDenied", "permission_denied", False),
    (403, "LackPolicy", "permission_denied", False),
    (429, "FlowLimitExceeded", "rate_limited", True),
    (400, "Throttling", "rate_limited", True),  # another gateway's name: matched by its shape
    (404, "InvalidActionOrVersion", "invalid_request", False),
    (404, "ServiceNotFound", "invalid_request", False),
    (400, "MissingParameter", "invalid_request", False),
    (500, "InternalError", "provider_unavailable", True),
    (503, "ServiceUnavailableTemp", "provider_unavailable", True),
    (502, "FailToConnect", "provider_unavailable", True),
]


@pytest.mark.parametrize("http_status, code, our_code, transient", GATEWAY_ERRORS)
def test_gateway_errors_end_the_task_as_documented(
    volc, user, media_root, settings, http_status, code, our_code, transient
):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    _, fake = volc()
    fake.on("CVProcess", gateway(http_status, code))
    task = run(user)
    assert_failed(task, our_code, media_root, attempts=2 if transient else 1)
    assert task.provider_request_id == "gw-req-1"
    if code == "InvalidTimestamp":
        assert "clock" in task.error_message
    if code in ("InvalidActionOrVersion", "ServiceNotFound"):
        assert "base URL" in task.error_message


def test_a_body_that_is_not_json_is_classified_by_its_status(volc, user, media_root, settings):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    _, fake = volc()
    fake.on("CVProcess", (502, "<html>Bad Gateway</html>"))
    task = run(user)
    assert_failed(task, "provider_unavailable", media_root, attempts=2)


def test_a_success_without_a_picture_is_a_failed_generation(volc, user, media_root):
    _, fake = volc()
    fake.on("CVProcess", ok({"binary_data_base64": [], "image_urls": None}))
    assert_failed(run(user), "generation_failed", media_root)


def test_an_unreadable_200_answer_is_a_provider_error(volc, user, media_root):
    _, fake = volc()
    fake.on("CVProcess", (200, {"unexpected": True}))
    task = run(user)
    assert_failed(task, "provider_error", media_root)


# --- paid calls are never sent twice; timeouts ----------------------------------------------------


def test_the_paid_calls_are_the_ones_that_make_pictures():
    assert PAID_ACTIONS == {"CVProcess", "CVSync2AsyncSubmitTask"}


def slow(seconds: float, answer):
    def respond():
        time.sleep(seconds)
        return answer

    return respond


def test_a_cvprocess_answer_that_times_out_is_not_sent_again(volc, user, media_root, settings):
    # The vendor may have made (and billed) the picture although its answer never arrived.
    settings.PROVIDER_MAX_ATTEMPTS = 3
    _, fake = volc(TIMEOUT_SECONDS=0.2)
    fake.on("CVProcess", slow(0.5, ok({"binary_data_base64": [b64(png())]})))
    task = run(user)
    assert_failed(task, "timeout", media_root, attempts=1)
    assert len(fake.bodies("CVProcess")) == 1
    assert "did not send the request again" in task.error_message


def test_a_submission_that_times_out_is_not_sent_again(volc):
    provider, fake = volc(TIMEOUT_SECONDS=0.2)
    fake.on("CVSync2AsyncSubmitTask", slow(0.5, ok({"task_id": "t-1"})))
    saved: list[dict] = []
    with pytest.raises(PermanentProviderError) as raised:
        provider.submit(jimeng_request(num_images=1), saved.append)
    assert raised.value.code == "timeout" and saved == []
    assert len(fake.bodies("CVSync2AsyncSubmitTask")) == 1


def test_a_status_call_that_times_out_is_looked_at_again(volc):
    provider, fake = volc(TIMEOUT_SECONDS=0.2)
    fake.on("CVSync2AsyncGetResult", slow(0.5, polled("generating")))
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert raised.value.code == "timeout"
    assert fake.bodies("CVSync2AsyncSubmitTask") == []


@pytest.mark.parametrize("answer", [gateway(504, "InternalServiceTimeout"), (504, "<html>Gateway Time-out</html>")])
def test_a_paid_call_the_gateway_stopped_waiting_for_is_not_sent_again(volc, user, media_root, settings, answer):
    settings.PROVIDER_MAX_ATTEMPTS = 3
    _, fake = volc()
    fake.on("CVProcess", answer)
    task = run(user)
    assert_failed(task, "timeout", media_root, attempts=1)
    assert len(fake.bodies("CVProcess")) == 1


def test_a_status_call_the_gateway_stopped_waiting_for_is_looked_at_again(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", gateway(504, "InternalServiceTimeout"))
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(jimeng_request(), three_jobs(), must_not_save)
    assert raised.value.code == "provider_unavailable"


def test_a_failed_later_submission_cancels_the_jobs_already_running(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncSubmitTask", ok({"task_id": "t-1"}), failure(400, 50412, "Text Risk Not Pass"))
    fake.on("CVCancelTask", ok({}))
    saved: list[dict] = []
    with pytest.raises(PermanentProviderError) as raised:
        provider.submit(jimeng_request(), saved.append)
    assert raised.value.code == "content_rejected" and saved == [three_jobs(saved=1)]
    assert fake.bodies("CVCancelTask") == [{"req_key": "jimeng_t2i_v30", "task_id": "t-1"}]


def test_the_job_calls_wait_30_seconds_and_cvprocess_90_unless_configured(configure_provider):
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK)
    assert VolcEngineProvider.DEFAULT_TIMEOUT_SECONDS == 90.0
    assert provider.call_timeout("CVProcess") == (10.0, 90.0)
    for action in ("CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult", "CVCancelTask"):
        assert provider.call_timeout(action) == (10.0, 30.0)
    configured = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, TIMEOUT_SECONDS=45.0)
    assert {configured.call_timeout(a) for a in ("CVProcess", "CVSync2AsyncGetResult")} == {(10.0, 45.0)}


# --- the readiness probe -----------------------------------------------------------------------


def test_check_asks_for_a_result_that_does_not_exist_and_lists_nothing(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", polled("not_found"))
    assert provider.check() is None  # the visual API has no model listing
    assert fake.bodies("CVSync2AsyncGetResult") == [{"req_key": "jimeng_seedream46_cvtob", "task_id": "0"}]
    assert [name for name, _, _ in fake.received] == ["CVSync2AsyncGetResult"]  # free: nothing is made
    assert fake.signature_problems == []


@pytest.mark.parametrize(
    "answer",
    [
        failure(400, 50215, "Input invalid for this service."),
        failure(429, 50429, "Request Has Reached API Limit, Please Try Later"),
        failure(500, 50500, "Internal Error"),
    ],
)
def test_check_accepts_any_other_service_answer(volc, answer):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", answer)
    assert provider.check() is None


def test_check_reports_an_account_without_the_service(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", failure(401, 50400, "Access Denied: Internal Error", request_id="req-acl"))
    with pytest.raises(PermanentProviderError) as raised:
        provider.check()
    assert (raised.value.code, raised.value.kind, raised.value.request_id) == (
        "permission_denied",
        Kind.ACCOUNT,
        "req-acl",
    )


def test_check_reports_refused_credentials(volc):
    provider, fake = volc()
    fake.on("CVSync2AsyncGetResult", gateway(401, "SignatureDoesNotMatch"))
    with pytest.raises(PermanentProviderError) as raised:
        provider.check()
    assert raised.value.code == "authentication_failed" and raised.value.request_id == "gw-req-1"


def test_check_reports_an_unreachable_host(configure_provider):
    unreachable = {"BASE_URL": "http://127.0.0.1:9", "TIMEOUT_SECONDS": 0.5}
    provider = configure_provider("volcengine", ACCESS_KEY=AK, SECRET_KEY=SK, **unreachable)
    with pytest.raises(ProviderError) as raised:
        provider.check()
    assert raised.value.transient and raised.value.code == "connection_error"
