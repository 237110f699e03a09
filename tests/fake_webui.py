"""A stand-in for an AUTOMATIC1111 WebUI started with --api: a threaded HTTP server on 127.0.0.1.

It behaves as the real one does (modules/api/api.py and modules/progress.py, WebUI 1.7+), as far
as Atelier can tell:
- POST /sdapi/v1/txt2img blocks while it "samples" `steps` steps of `step_seconds` each, one call
  at a time behind a generation lock; it answers with `batch_size` base64 PNGs and `info` (a JSON
  string with the seeds). The call's `force_task_id` names it: queued on arrival, current while
  it runs, finished afterwards.
- POST /internal/progress {id_task, id_live_preview}: that call's `active`, `queued`,
  `completed`, `progress` (0–1), `eta` and, when the picture changed since `id_live_preview` and
  `previews` is on, `live_preview` (a data: URI) with its `id_live_preview`. Absent (404) when
  `by_name` is False, like WebUIs before 1.6.
- GET /sdapi/v1/progress: `progress` (0–1), `eta_relative`, `state` {job_count, job_no,
  sampling_step, sampling_steps, interrupted, skipped, job, job_timestamp}, `current_task` and,
  unless `skip_current_image=true` or `previews` is False, `current_image`: a base64 PNG of the
  picture so far. `current_task` is null, as upstream sends it (it imports the name by value);
  `current_task="name"` gives the running call's name instead, `"absent"` leaves it out.
- POST /sdapi/v1/interrupt: the running call stops sampling and answers at once with its
  unfinished pictures (200, like the real one); nothing happens when nothing runs.
- GET /sdapi/v1/sd-models lists one checkpoint.

    with serving() as webui:
        webui.step_seconds = 0.05
        configure_provider("automatic1111", BASE_URL=webui.url, PROGRESS_SECONDS=0.05)

The `fake_webui` fixture gives one per test.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

CHECKPOINT = "fake_v1.safetensors [0123456789]"


def png(size: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


@dataclass
class FakeWebUI:
    url: str = ""
    step_seconds: float = 0.05
    previews: bool = True
    by_name: bool = True  # serves /internal/progress
    current_task_field: str = "null"  # "null", "name" or "absent" in /sdapi/v1/progress
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    generation_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- what it saw (read under `lock`, or after the calls are done) ---
    calls: list[dict] = field(default_factory=list)  # txt2img bodies, on arrival
    looks: list[bool] = field(default_factory=list)  # each /sdapi/v1/progress: was the picture skipped?
    named_looks: list[str] = field(default_factory=list)  # each /internal/progress: the id_task asked about
    interrupts: list[str | None] = field(default_factory=list)  # the job running at each interrupt
    answered: list[dict] = field(default_factory=list)  # per call: steps done, interrupted

    # --- the running job ---
    current_task: str | None = None
    queued: set[str] = field(default_factory=set)
    finished: list[str] = field(default_factory=list)
    sampling_step: int = 0
    sampling_steps: int = 0
    interrupted: bool = False
    started: float = 0.0

    def txt2img(self, body: dict) -> dict:
        with self.lock:
            self.calls.append(body)
        steps, count = int(body.get("steps") or 20), int(body.get("batch_size") or 1)
        name = body.get("force_task_id") or f"task({len(self.calls)})"
        with self.lock:
            self.queued.add(name)
        with self.generation_lock:
            with self.lock:
                self.queued.discard(name)
                self.current_task = name
                self.sampling_step, self.sampling_steps, self.interrupted = 0, steps, False
                self.started = time.monotonic()
            for _ in range(steps):
                time.sleep(self.step_seconds)
                with self.lock:
                    if self.interrupted:
                        break
                    self.sampling_step += 1
            with self.lock:
                done, interrupted = self.sampling_step, self.interrupted
                self.answered.append({"steps": done, "interrupted": interrupted})
                self.finished.append(name)
                self.current_task, self.sampling_step, self.sampling_steps = None, 0, 0
        seed = body.get("seed") if isinstance(body.get("seed"), int) and body["seed"] >= 0 else 1234
        seeds = [seed + index for index in range(count)]
        shade = 255 * done // max(steps, 1)
        pictures = [base64.b64encode(png(64, (shade, 90, 160))).decode() for _ in range(count)]
        info = {"seed": seeds[0], "all_seeds": seeds, "infotexts": [""] * count}
        return {"images": pictures, "parameters": body, "info": json.dumps(info)}

    def progress(self, skip_picture: bool) -> dict:
        with self.lock:
            self.looks.append(skip_picture)
            running = self.current_task is not None
            state = {
                "skipped": False,
                "interrupted": self.interrupted,
                "job": self.current_task or "",
                "job_count": 1 if running else 0,
                "job_timestamp": "20261205120000",
                "job_no": 0,
                "sampling_step": self.sampling_step,
                "sampling_steps": self.sampling_steps,
            }
            fraction = self.sampling_step / self.sampling_steps if running and self.sampling_steps else 0
            elapsed = time.monotonic() - self.started if running else 0
            body: dict = {
                "progress": fraction,
                "eta_relative": (elapsed / fraction - elapsed) if fraction else 0,
                "state": state,
                "current_image": None,
                "textinfo": None,
            }
            if self.current_task_field == "null":
                body["current_task"] = None
            elif self.current_task_field == "name":
                body["current_task"] = self.current_task
            if running and self.previews and not skip_picture and self.sampling_step:
                shade = 255 * self.sampling_step // self.sampling_steps
                body["current_image"] = base64.b64encode(png(128, (shade, 90, 160))).decode()
        return body

    def progress_of(self, body: dict) -> dict:
        name = body.get("id_task")
        with self.lock:
            self.named_looks.append(str(name))
            active = name is not None and name == self.current_task
            answer: dict = {
                "active": active,
                "queued": name in self.queued,
                "paused": False,
                "completed": name in self.finished,
                "progress": None,
                "eta": None,
                "live_preview": None,
                "id_live_preview": -1,
                "textinfo": None if active else ("Queued..." if name in self.queued else "Waiting..."),
            }
            if active and self.sampling_steps:
                answer["progress"] = self.sampling_step / self.sampling_steps
                preview_id = self.sampling_step  # a new picture every step
                answer["id_live_preview"] = body.get("id_live_preview", -1)
                if self.previews and self.sampling_step and preview_id != body.get("id_live_preview"):
                    shade = 255 * self.sampling_step // self.sampling_steps
                    encoded = base64.b64encode(png(128, (shade, 90, 160))).decode()
                    answer["live_preview"] = f"data:image/png;base64,{encoded}"
                    answer["id_live_preview"] = preview_id
        return answer

    def interrupt(self) -> dict:
        with self.lock:
            self.interrupts.append(self.current_task)
            if self.current_task is not None:
                self.interrupted = True
        return {}

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "calls": len(self.calls),
                "looks": list(self.looks),
                "named_looks": list(self.named_looks),
                "interrupts": list(self.interrupts),
                "answered": list(self.answered),
            }


class _Handler(BaseHTTPRequestHandler):
    webui: FakeWebUI

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _reply(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            parsed = {}
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/sdapi/v1/progress":
            skip = parse_qs(parts.query).get("skip_current_image", ["false"])[0].lower() == "true"
            self._reply(self.webui.progress(skip))
        elif parts.path == "/sdapi/v1/sd-models":
            self._reply([{"title": CHECKPOINT, "model_name": "fake_v1", "hash": "0123456789"}])
        else:
            self._reply({"detail": "Not Found"}, 404)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/sdapi/v1/txt2img":
            self._reply(self.webui.txt2img(body))
        elif path == "/sdapi/v1/interrupt":
            self._reply(self.webui.interrupt())
        elif path == "/internal/progress":
            answer = self.webui.progress_of(body)  # counted either way
            self._reply(answer if self.webui.by_name else {"detail": "Not Found"}, 200 if self.webui.by_name else 404)
        else:
            self._reply({"detail": "Not Found"}, 404)


@contextmanager
def serving() -> Iterator[FakeWebUI]:
    webui = FakeWebUI()
    handler = type("Handler", (_Handler,), {"webui": webui})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    webui.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-webui", daemon=True)
    thread.start()
    try:
        yield webui
    finally:
        with webui.lock:
            webui.interrupted = True  # end a call still sampling
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_webui() -> Iterator[FakeWebUI]:
    with serving() as webui:
        yield webui
