"""Fake vendors for cluster tests: one threaded HTTP server on 127.0.0.1 speaking two protocols.

- OpenAI's images API, synchronously: POST /v1/images/generations answers after `sync_delay`
  seconds with {"data": [{"b64_json": <PNG>}, ...]} (providers.md §5).
- DashScope's asynchronous jobs: POST /api/v1/services/aigc/text2image/image-synthesis (Wan 2.5
  and older, qwen-image: `input.prompt`) or /api/v1/services/aigc/image-generation/generation
  (Wan 2.6: `input.messages`), with X-DashScope-Async: enable, starts a job that runs
  `job_seconds`; GET /api/v1/tasks/{id} says PENDING, RUNNING, then SUCCEEDED with result URLs
  served by this same server (a real PNG), as `results[].url` or `choices[].message.content[].image`
  like the route it came by; POST /api/v1/tasks/{id}/cancel cancels it. Without the async header
  both answer 403 AccessDenied, as DashScope does. POST
  /api/v1/services/aigc/multimodal-generation/generation (qwen-image-max, qwen-image-2.0) answers
  synchronously after `job_seconds` with the `choices` shape. (providers.md §3.)

Tasks put a unique token (`token()`) in their prompt; the server counts per token, so a test
knows how often each task reached the vendor. Errors can be scripted per token (or for every
prompt with token ""): `fail_generations` (OpenAI), `fail_submissions`, `fail_status_checks`
and `fail_jobs` (DashScope), in the vendors' own error bodies.

    def test_something(fake_vendor, start_qcluster):
        fake_vendor.sync_delay = 2
        start_qcluster(**fake_vendor.openai_env(), OPENAI_CONCURRENCY=1)
        ...
        assert fake_vendor.generations[tok] == 1

A test module gets the `fake_vendor` fixture by importing it, or defines its own around
`serving()` (tests/test_scheduler_cluster.py does).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

TOKEN = re.compile(r"\btok-[0-9a-z]+\b")
_tokens = itertools.count(1)

OPENAI_PREFIX = "/v1"
DASHSCOPE_PREFIX = "/api/v1"
SUBMIT_PATH = DASHSCOPE_PREFIX + "/services/aigc/text2image/image-synthesis"
MESSAGES_SUBMIT_PATH = DASHSCOPE_PREFIX + "/services/aigc/image-generation/generation"
SYNC_PATH = DASHSCOPE_PREFIX + "/services/aigc/multimodal-generation/generation"
TASK_PATH = re.compile(rf"^{DASHSCOPE_PREFIX}/tasks/([^/]+)(/cancel)?$")
RESULT_PATH = re.compile(r"^/results/([^/]+)/(\d+)\.png$")

# Error bodies as the vendors send them (providers.md §3.4, §5; DashScope's from its error-code
# page, alibabacloud.com/help/en/model-studio/error-code).
OPENAI_ERRORS = {
    429: {"message": "Rate limit reached for images per minute.", "type": "requests", "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error processing your request.", "type": "server_error", "code": None},
    503: {"message": "The engine is currently overloaded.", "type": "server_error", "code": None},
}
DASHSCOPE_ERRORS = {
    400: {"code": "InvalidParameter", "message": "Required parameter(s) missing or invalid."},
    403: {"code": "AccessDenied", "message": "Access denied."},
    429: {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded, please try again later."},
    500: {
        "code": "InternalError",
        "message": "An internal error has occured, try again later or contact service support.",
    },
    503: {"code": "ModelUnavailable", "message": "Model is unavailable, try again later."},
}


def token() -> str:
    """A unique word for a task's prompt, by which the server counts that task's calls."""
    return f"tok-{next(_tokens)}{uuid.uuid4().hex[:8]}"


def token_in(prompt: str) -> str:
    found = TOKEN.search(prompt or "")
    return found.group(0) if found else prompt


def png_bytes(size: int = 64, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Failure:
    """A scripted error answer: `status` for prompts with `token` ("" = every prompt), `times` more
    times (None = always), with a Retry-After header when `retry_after` is set. For DashScope,
    `code` and `message` replace the status's usual body (DASHSCOPE_ERRORS); for a failed job they
    are the job's own."""

    token: str
    status: int
    times: int | None
    retry_after: float | None = None
    code: str = ""
    message: str = ""

    def dashscope_body(self) -> dict:
        body = dict(DASHSCOPE_ERRORS.get(self.status, DASHSCOPE_ERRORS[500]))
        if self.code:
            body = {"code": self.code, "message": self.message}
        return {**body, "request_id": "req-error"}

    def take(self, tok: str) -> bool:
        if self.token not in ("", tok) or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass
class Job:
    id: str
    token: str
    count: int
    submitted: float  # time.monotonic()
    runs_for: float
    canceled: bool = False
    choices: bool = False  # results as output.choices (the messages routes), not output.results
    failure: Failure | None = None  # the job ends FAILED with this code (fail_jobs)

    def status(self, now: float) -> str:
        if self.canceled:
            return "CANCELED"
        elapsed = now - self.submitted
        if elapsed >= self.runs_for:
            return "FAILED" if self.failure is not None else "SUCCEEDED"
        return "PENDING" if elapsed < self.runs_for / 4 else "RUNNING"

    def results(self, base_url: str) -> dict:
        """What a finished job's output holds besides its status, in its route's shape."""
        urls = [f"{base_url}/results/{self.id}/{i}.png" for i in range(self.count)]
        if self.choices:
            message = {"role": "assistant", "content": [{"image": url, "type": "image"} for url in urls]}
            return {"choices": [{"finish_reason": "stop", "message": message}], "finished": True}
        metrics = {"TOTAL": self.count, "SUCCEEDED": self.count, "FAILED": 0}
        return {"results": [{"url": url} for url in urls], "task_metrics": metrics}


@dataclass
class FakeVendor:
    """The server's behaviour (set by the test) and what it saw (read by the test).

    Every counter is updated under `lock`; read them after the cluster is done, or under the lock.
    """

    url: str = ""
    sync_delay: float = 0.0  # seconds an OpenAI generation takes
    job_seconds: float = 1.0  # seconds a DashScope job runs after its submission
    png: bytes = field(default_factory=png_bytes)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- what it saw ---
    # OpenAI generation requests received per token, scripted error answers included.
    generations: Counter = field(default_factory=Counter)
    # (time.time(), token) of each generation request, on arrival, in order.
    generation_times: list[tuple[float, str]] = field(default_factory=list)
    # Generation requests being answered right now (scripted errors, answered at once, excluded),
    # and the most there ever were at once.
    in_flight: int = 0
    max_in_flight: int = 0
    # DashScope job submissions received per token (each one would be a paid job; a synchronous
    # multimodal-generation call counts here too), scripted error answers included.
    submissions: Counter = field(default_factory=Counter)
    # (time.time(), token) of each submission, on arrival.
    submission_times: list[tuple[float, str]] = field(default_factory=list)
    # GET /tasks/{id} per token, scripted error answers included.
    status_checks: Counter = field(default_factory=Counter)
    # Job ids whose cancel was asked for.
    cancels: list[str] = field(default_factory=list)
    # Result pictures downloaded per token.
    downloads: Counter = field(default_factory=Counter)
    # Requests the server did not understand (method and path); a test expects none.
    unexpected: list[str] = field(default_factory=list)

    jobs: dict[str, Job] = field(default_factory=dict, repr=False)
    _generation_failures: list[Failure] = field(default_factory=list, repr=False)
    _status_failures: list[Failure] = field(default_factory=list, repr=False)
    _submission_failures: list[Failure] = field(default_factory=list, repr=False)
    _job_failures: list[Failure] = field(default_factory=list, repr=False)

    # --- scripting ---

    def fail_generations(
        self, tok: str, status: int, times: int | None = None, retry_after: float | None = None
    ) -> None:
        """Answer OpenAI generations for prompts with `tok` ("" = all) with `status` (429, 500, 503)."""
        with self.lock:
            self._generation_failures.append(Failure(tok, status, times, retry_after))

    def fail_status_checks(
        self,
        tok: str,
        status: int,
        times: int | None = None,
        retry_after: float | None = None,
        code: str = "",
        message: str = "",
    ) -> None:
        """Answer DashScope status checks of the job for `tok` ("" = all jobs) with `status`."""
        with self.lock:
            self._status_failures.append(Failure(tok, status, times, retry_after, code, message))

    def fail_submissions(
        self,
        tok: str,
        status: int,
        times: int | None = None,
        retry_after: float | None = None,
        code: str = "",
        message: str = "",
    ) -> None:
        """Answer DashScope submissions (and synchronous calls) for `tok` ("" = all) with `status`
        and DashScope's body for it, or `code` and `message` (e.g. 429 Throttling.AllocationQuota,
        "Free allocated quota exceeded.")."""
        with self.lock:
            self._submission_failures.append(Failure(tok, status, times, retry_after, code, message))

    def fail_jobs(self, tok: str, code: str, message: str = "", times: int | None = None) -> None:
        """Let the next `times` jobs for `tok` ("" = all) end FAILED with DashScope's `code`
        (e.g. InternalError.Algo, IPInfringementSuspect) once they have run."""
        with self.lock:
            self._job_failures.append(Failure(tok, 200, times, None, code, message))

    # --- environments for a qcluster ---

    def openai_env(self, **extra: object) -> dict[str, object]:
        return {
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": self.url + OPENAI_PREFIX,
            "OPENAI_SELF_HOSTED": "true",  # lets the provider call 127.0.0.1
            "OPENAI_MODELS": "dall-e-3",
            **extra,
        }

    def dashscope_env(self, **extra: object) -> dict[str, object]:
        return {
            "DASHSCOPE_API_KEY": "sk-fake",
            "DASHSCOPE_BASE_URL": self.url + DASHSCOPE_PREFIX,
            "DASHSCOPE_SELF_HOSTED": "true",  # lets the result URLs point at 127.0.0.1
            "DASHSCOPE_MODELS": "wan2.2-t2i-flash",
            **extra,
        }

    # --- derived figures ---

    def max_in_window(self, seconds: float, times: list[float] | None = None) -> int:
        """The most generation requests that arrived within any `seconds`-long window."""
        stamps = sorted(times if times is not None else [at for at, _ in self.generation_times])
        most, start = 0, 0
        for end, at in enumerate(stamps):
            while at - stamps[start] >= seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    # --- the protocol (called by the handler) ---

    def _generation_failure(self, tok: str) -> Failure | None:
        return next((failure for failure in self._generation_failures if failure.take(tok)), None)

    def _status_failure(self, tok: str) -> Failure | None:
        return next((failure for failure in self._status_failures if failure.take(tok)), None)

    def _submission_failure(self, tok: str) -> Failure | None:
        return next((failure for failure in self._submission_failures if failure.take(tok)), None)

    def _job_failure(self, tok: str) -> Failure | None:
        return next((failure for failure in self._job_failures if failure.take(tok)), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the providers' requests Session expects
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker was killed mid-call: nobody is left to answer

    # --- plumbing ---

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _send(self, status: int, body: object, *, retry_after: float | None = None, kind: str = "json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "image/png" if kind == "png" else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req-{uuid.uuid4().hex[:12]}")
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.end_headers()
        self.wfile.write(data)

    def _unexpected(self) -> None:
        vendor = self.server.vendor
        self._body()
        with vendor.lock:
            vendor.unexpected.append(f"{self.command} {self.path}")
        self._send(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    # --- routes ---

    def do_POST(self) -> None:
        if self.path == OPENAI_PREFIX + "/images/generations":
            self._generate()
        elif self.path in (SUBMIT_PATH, MESSAGES_SUBMIT_PATH):
            self._submit(choices=self.path == MESSAGES_SUBMIT_PATH)
        elif self.path == SYNC_PATH:
            self._generate_now()
        elif (match := TASK_PATH.match(self.path)) and match[2]:
            self._cancel(match[1])
        else:
            self._unexpected()

    def do_GET(self) -> None:
        if (match := TASK_PATH.match(self.path)) and not match[2]:
            self._status(match[1])
        elif match := RESULT_PATH.match(self.path):
            self._result(match[1])
        elif self.path == OPENAI_PREFIX + "/models":
            self._send(200, {"object": "list", "data": [{"id": "dall-e-3", "object": "model"}]})
        else:
            self._unexpected()

    def _generate(self) -> None:
        vendor, body = self.server.vendor, self._body()
        tok = token_in(str(body.get("prompt") or ""))
        count = int(body.get("n") or 1)
        with vendor.lock:
            vendor.generations[tok] += 1
            vendor.generation_times.append((time.time(), tok))
            failure = vendor._generation_failure(tok)
            if failure is None:
                vendor.in_flight += 1
                vendor.max_in_flight = max(vendor.max_in_flight, vendor.in_flight)
            delay = vendor.sync_delay
        if failure is not None:
            error = OPENAI_ERRORS.get(failure.status, OPENAI_ERRORS[500])
            self._send(failure.status, {"error": error}, retry_after=failure.retry_after)
            return
        try:
            time.sleep(delay)
        finally:
            with vendor.lock:
                vendor.in_flight -= 1
        picture = base64.b64encode(vendor.png).decode()
        self._send(200, {"created": int(time.time()), "data": [{"b64_json": picture} for _ in range(count)]})

    def _submit(self, *, choices: bool) -> None:
        vendor, body = self.server.vendor, self._body()
        if self.headers.get("X-DashScope-Async") != "enable":
            refusal = {"code": "AccessDenied", "message": "current user api does not support synchronous calls."}
            self._send(403, {**refusal, "request_id": "req-refused"})
            return
        tok = token_in(_dashscope_prompt(body))
        count = int((body.get("parameters") or {}).get("n") or 1)
        job = Job(id=str(uuid.uuid4()), token=tok, count=count, submitted=time.monotonic(), runs_for=0, choices=choices)
        with vendor.lock:
            vendor.submissions[tok] += 1
            vendor.submission_times.append((time.time(), tok))
            failure = vendor._submission_failure(tok)
            if failure is None:
                job.runs_for = vendor.job_seconds
                job.failure = vendor._job_failure(tok)
                vendor.jobs[job.id] = job
        if failure is not None:
            self._send(failure.status, failure.dashscope_body(), retry_after=failure.retry_after)
            return
        self._send(200, {"output": {"task_id": job.id, "task_status": "PENDING"}, "request_id": f"req-{job.id[:8]}"})

    def _generate_now(self) -> None:
        """The synchronous route: the pictures come in the answer, `job_seconds` later."""
        vendor, body = self.server.vendor, self._body()
        if self.headers.get("X-DashScope-Async") == "enable":
            refusal = {"code": "AccessDenied", "message": "current user api does not support asynchronous calls."}
            self._send(403, {**refusal, "request_id": "req-refused"})
            return
        tok = token_in(_dashscope_prompt(body))
        count = int((body.get("parameters") or {}).get("n") or 1)
        job = Job(id=str(uuid.uuid4()), token=tok, count=count, submitted=time.monotonic(), runs_for=0, choices=True)
        with vendor.lock:
            vendor.submissions[tok] += 1
            vendor.submission_times.append((time.time(), tok))
            failure = vendor._submission_failure(tok)
            if failure is None:
                vendor.jobs[job.id] = job  # kept so its result links can be downloaded
            delay = vendor.job_seconds
        if failure is not None:
            self._send(failure.status, failure.dashscope_body(), retry_after=failure.retry_after)
            return
        time.sleep(delay)
        self._send(200, {"output": job.results(vendor.url), "request_id": f"req-{job.id[:8]}"})

    def _status(self, job_id: str) -> None:
        vendor = self.server.vendor
        with vendor.lock:
            job = vendor.jobs.get(job_id)
            tok = job.token if job else ""
            vendor.status_checks[tok] += 1
            failure = vendor._status_failure(tok) if job else None
        if failure is not None:
            self._send(failure.status, failure.dashscope_body(), retry_after=failure.retry_after)
            return
        if job is None:  # DashScope's answer for an id it does not know (also check()'s probe)
            self._send(200, {"output": {"task_id": job_id, "task_status": "UNKNOWN"}, "request_id": "req-unknown"})
            return
        status = job.status(time.monotonic())
        output: dict = {"task_id": job.id, "task_status": status}
        if status == "SUCCEEDED":
            output |= job.results(vendor.url)
        elif status == "FAILED" and job.failure is not None:
            output |= {"code": job.failure.code, "message": job.failure.message}
        self._send(200, {"output": output, "request_id": f"req-{job.id[:8]}"})

    def _cancel(self, job_id: str) -> None:
        vendor = self.server.vendor
        self._body()
        with vendor.lock:
            vendor.cancels.append(job_id)
            job = vendor.jobs.get(job_id)
            if job is not None and job.status(time.monotonic()) == "PENDING":
                job.canceled = True
        self._send(200, {"output": {"task_id": job_id, "task_status": "CANCELED"}, "request_id": "req-cancel"})

    def _result(self, job_id: str) -> None:
        vendor = self.server.vendor
        with vendor.lock:
            job = vendor.jobs.get(job_id)
            if job is not None:
                vendor.downloads[job.token] += 1
        if job is None:
            self._send(404, {"code": "NotFound"})
            return
        self._send(200, vendor.png, kind="png")


def _dashscope_prompt(body: dict) -> str:
    """The prompt of either body shape: input.prompt, or input.messages[0].content[*].text."""
    given = body.get("input")
    if not isinstance(given, dict):
        return ""
    if given.get("prompt"):
        return str(given["prompt"])
    for message in given.get("messages") or []:
        for part in (message.get("content") if isinstance(message, dict) else None) or []:
            if isinstance(part, dict) and part.get("text"):
                return str(part["text"])
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many workers may connect at once
    vendor: FakeVendor


@contextmanager
def serving() -> Iterator[FakeVendor]:
    """Run a fake vendor on 127.0.0.1 (a free port) in a daemon thread for the block."""
    vendor = FakeVendor()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.vendor = vendor
    vendor.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield vendor
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    """A running fake OpenAI + DashScope server for this test; see the module docstring."""
    with serving() as vendor:
        yield vendor
