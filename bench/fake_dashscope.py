"""A fake DashScope for the scheduling phase: the asynchronous text-to-image job API, counted.

Runs as a thread of the orchestrator (ThreadingHTTPServer, a thread per request) and speaks
what generator/providers/dashscope.py calls (providers.md §3):

    POST {base}/services/aigc/text2image/image-synthesis -> {"output": {"task_id", "task_status": "PENDING"}, "request_id"}
    GET  {base}/tasks/{id}         -> PENDING, RUNNING, then SUCCEEDED `job_seconds` after submission,
                                      with "results": [{"url": <this server>/files/{id}-{n}.png}]
    POST {base}/tasks/{id}/cancel  -> cancels a PENDING job (counted; the bench expects none)
    GET  /files/{id}-{n}.png       -> a small real PNG made with Pillow

It counts submissions, looks, downloads and cancels, and keeps each job's submission time, so
`stats()` can say how many jobs were running at the vendor at once.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_PREFIX = "/api/v1"
SUBMIT_PATH = API_PREFIX + "/services/aigc/text2image/image-synthesis"
TASK_PATH = re.compile(rf"^{API_PREFIX}/tasks/([0-9a-f-]+)(/cancel)?$")
FILE_PATH = re.compile(r"^/files/([0-9a-f-]+)-(\d+)\.png$")
SIZE = re.compile(r"^(\d+)\*(\d+)$")
# A job is PENDING this long (at most), then RUNNING until it is done.
PENDING_SECONDS = 0.5


@dataclass
class Job:
    task_id: str
    submitted: float  # time.monotonic()
    width: int
    height: int
    count: int
    looks: int = 0
    first_seen_done: float | None = None  # the first look that answered SUCCEEDED
    canceled: float | None = None
    downloads: int = 0


@dataclass
class FakeDashScope:
    job_seconds: float
    log_path: Path | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    submissions: int = 0
    unexpected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pngs: dict[tuple[int, int], bytes] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _started: float = 0.0

    # --- running ----------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-dashscope", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def origin(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.origin + API_PREFIX

    def __enter__(self) -> FakeDashScope:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the app asks ------------------------------------------------------------

    def submit(self, body: dict) -> dict:
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        size = SIZE.match(str(parameters.get("size") or "1024*1024"))
        width, height = (int(size[1]), int(size[2])) if size else (1024, 1024)
        count = int(parameters.get("n") or 4)  # the vendor's own default
        job = Job(task_id=str(uuid.uuid4()), submitted=time.monotonic(), width=width, height=height, count=count)
        with self._lock:
            self.submissions += 1
            self.jobs[job.task_id] = job
        self.log(f"submit {job.task_id} model={body.get('model')} size={width}x{height} n={count}")
        return {"output": {"task_id": job.task_id, "task_status": "PENDING"}, "request_id": _request_id()}

    def status(self, task_id: str) -> dict:
        now = time.monotonic()
        with self._lock:
            job = self.jobs.get(task_id)
            if job is None:
                return {"output": {"task_id": task_id, "task_status": "UNKNOWN"}, "request_id": _request_id()}
            job.looks += 1
            elapsed = now - job.submitted
            if job.canceled is not None:
                state = "CANCELED"
            elif elapsed < min(PENDING_SECONDS, self.job_seconds):
                state = "PENDING"
            elif elapsed < self.job_seconds:
                state = "RUNNING"
            else:
                state = "SUCCEEDED"
                if job.first_seen_done is None:
                    job.first_seen_done = now
        output: dict = {"task_id": task_id, "task_status": state}
        if state == "SUCCEEDED":
            output["results"] = [
                {"url": f"{self.origin}/files/{task_id}-{n}.png", "orig_prompt": "", "actual_prompt": ""}
                for n in range(job.count)
            ]
            output["task_metrics"] = {"TOTAL": job.count, "SUCCEEDED": job.count, "FAILED": 0}
        self.log(f"look {task_id} {state} after {elapsed:.2f}s")
        return {"output": output, "request_id": _request_id()}

    def cancel(self, task_id: str) -> tuple[int, dict]:
        now = time.monotonic()
        with self._lock:
            job = self.jobs.get(task_id)
            pending = job is not None and job.canceled is None and now - job.submitted < PENDING_SECONDS
            if pending and job is not None:
                job.canceled = now
        self.log(f"cancel {task_id} {'canceled' if pending else 'refused'}")
        if pending:
            return 200, {"request_id": _request_id()}
        return 400, {"code": "UnsupportedOperation", "message": "only PENDING jobs can be canceled"}

    def picture(self, task_id: str) -> bytes | None:
        with self._lock:
            job = self.jobs.get(task_id)
            if job is None:
                return None
            job.downloads += 1
            size = (job.width, job.height)
            if size not in self._pngs:
                self._pngs[size] = _png(*size)
            return self._pngs[size]

    def log(self, line: str) -> None:
        if self.log_path is not None:
            with self._lock, self.log_path.open("a") as handle:
                handle.write(f"[{time.monotonic() - self._started:7.2f}s] {line}\n")

    # --- what it saw ------------------------------------------------------------------

    def stats(self) -> dict:
        with self._lock:
            jobs = list(self.jobs.values())
            submissions, unexpected = self.submissions, list(self.unexpected)
        # A job runs at the vendor from its submission until it is done (or canceled).
        edges = sorted(
            [(job.submitted, 1) for job in jobs]
            + [(job.canceled or job.submitted + self.job_seconds, -1) for job in jobs],
            key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
        )
        running = in_flight_max = 0
        for _, change in edges:
            running += change
            in_flight_max = max(in_flight_max, running)
        noticed = [job.first_seen_done - (job.submitted + self.job_seconds) for job in jobs if job.first_seen_done]
        first = min((job.submitted for job in jobs), default=0.0)
        return {
            "job_seconds": self.job_seconds,
            "submissions": submissions,
            "jobs": len(jobs),
            "in_flight_max": in_flight_max,
            "looks": sum(job.looks for job in jobs),
            "looks_per_job_max": max((job.looks for job in jobs), default=0),
            "downloads": sum(job.downloads for job in jobs),
            "cancels": sum(1 for job in jobs if job.canceled is not None),
            "submission_spread_seconds": round(max((job.submitted for job in jobs), default=0.0) - first, 3),
            # from a job being done at the vendor to the first look that saw it
            "noticed_after_done_max_seconds": round(max(noticed, default=0.0), 3),
            "noticed_after_done_mean_seconds": round(sum(noticed) / len(noticed), 3) if noticed else 0.0,
            "unexpected_requests": unexpected,
        }


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeDashScope

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._json(401, {"code": "InvalidApiKey", "message": "No API-key provided."})
            return
        if self.path == SUBMIT_PATH:
            if self.headers.get("X-DashScope-Async") != "enable":
                self._json(400, {"code": "InvalidParameter", "message": "does not support synchronous calls"})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, {"code": "InvalidParameter", "message": "the body is not JSON"})
                return
            self._json(200, fake.submit(body if isinstance(body, dict) else {}))
            return
        match = TASK_PATH.match(self.path)
        if match and match[2]:
            self._json(*fake.cancel(match[1]))
            return
        self._unexpected()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.server_fake
        match = TASK_PATH.match(self.path)
        if match and not match[2]:
            self._json(200, fake.status(match[1]))
            return
        match = FILE_PATH.match(self.path)
        picture = fake.picture(match[1]) if match else None
        if picture is None:
            self._unexpected()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(picture)))
        self.end_headers()
        self.wfile.write(picture)

    def _unexpected(self) -> None:
        with self.server_fake._lock:
            self.server_fake.unexpected.append(f"{self.command} {self.path}")
        self._json(404, {"code": "NotFound", "message": "no such resource"})

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # fake.log() keeps what matters


def _request_id() -> str:
    return str(uuid.uuid4())


def _png(width: int, height: int) -> bytes:
    """A real picture of the asked size: a two-tone gradient compresses to a few kilobytes."""
    from PIL import Image

    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
