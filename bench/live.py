"""Time to visible: Generate → the first picture on screen, through the event stream (runs in the
app's environment, against the real server: gunicorn's uvicorn workers and a qcluster).

    python -m bench.live --url URL --session KEY --token TOKEN --tasks N --out result.json

What a create page does, one task at a time, timed from the submission: the page's one event
stream is open (GET /tasks/events with the session, as static/js/live.js opens it); the task
is submitted (POST /api/v1/generate, the same services.create_task as the form); when the
stream says the task completed, its card is fetched (what live.js does) and then the card's
first thumbnail. Time to visible = submission sent → thumbnail received. Beside it the task's
own duration, as the server records it: created_at → finished_at (waiting for a worker, then
running). The difference is what the page adds: the create request before the task exists,
the signal's way to the stream, and the card and picture requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import django

from .pipeline import percentile

# Production sits behind a TLS proxy that says so; without it DEBUG=false redirects to https.
PROXY = {"X-Forwarded-Proto": "https"}
THUMBNAIL = re.compile(r'<a [^>]*class="thumb"[^>]*>\s*<img src="([^"]+)"')
WAIT_SECONDS = 30.0


class Stream(threading.Thread):
    """The page's event stream, read on its own thread: (monotonic time, event, data) in a queue."""

    def __init__(self, host: str, port: int, cookie: str) -> None:
        super().__init__(daemon=True)
        self.connection = http.client.HTTPConnection(host, port, timeout=60)
        self.connection.request(
            "GET", "/tasks/events", headers={"Cookie": cookie, "Accept": "text/event-stream", **PROXY}
        )
        self.response = self.connection.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"the event stream answered {self.response.status}")
        self.events: queue.Queue[tuple[float, str, dict]] = queue.Queue()

    def run(self) -> None:
        name, data = "message", ""
        for raw in self.response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line:
                if data:
                    self.events.put((time.monotonic(), name, json.loads(data)))
                name, data = "message", ""

    def wait_for(self, predicate, timeout: float = WAIT_SECONDS) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            at, name, data = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if predicate(name, data):
                return at, data

    def close(self) -> None:
        self.connection.close()


def run(url: str, session_key: str, token: str, count: int) -> dict:
    from generator.models import Task

    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    cookie = f"sessionid={session_key}"
    stream = Stream(host, port, cookie)
    stream.start()
    stream.wait_for(lambda name, data: name == "ready")
    pages = http.client.HTTPConnection(host, port, timeout=30)
    visible, own = [], []
    try:
        for n in range(count):
            body = json.dumps(
                {"prompt": f"a lighthouse at dawn, time to visible {n}", "provider": "offline", "model": "sketch-v1"}
            )
            submitted = time.monotonic()
            pages.request(
                "POST",
                "/api/v1/generate",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **PROXY},
            )
            answer = pages.getresponse()
            created = json.loads(answer.read())
            if answer.status != 201:
                raise RuntimeError(f"generate answered {answer.status}: {created}")
            task_id = created["task_id"]
            done = {"id": task_id, "status": "completed"}
            stream.wait_for(lambda name, data, done=done: name == "task" and data == done)
            card = _get(pages, f"/tasks/{task_id}/card", cookie).decode()
            match = THUMBNAIL.search(card)
            if match is None:
                raise RuntimeError(f"no thumbnail in the completed card:\n{card}")
            _get(pages, match.group(1).replace("&amp;", "&"), cookie)
            visible.append(time.monotonic() - submitted)
            task = Task.objects.get(pk=task_id)
            own.append((task.finished_at - task.created_at).total_seconds())
    finally:
        pages.close()
        stream.close()
    return summary(visible, own)


def _get(connection: http.client.HTTPConnection, path: str, cookie: str) -> bytes:
    connection.request("GET", path, headers={"Cookie": cookie, "HX-Request": "true", **PROXY})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return body


def summary(visible: list[float], own: list[float]) -> dict:
    added = [total - task for total, task in zip(visible, own, strict=True)]

    def ms(values: list[float], fraction: float) -> float:
        return round(percentile(values, fraction) * 1000, 1)

    return {
        "tasks": len(visible),
        "visible_p50_ms": ms(visible, 0.50),
        "visible_p95_ms": ms(visible, 0.95),
        "task_p50_ms": ms(own, 0.50),
        "task_p95_ms": ms(own, 0.95),
        "added_p50_ms": ms(added, 0.50),
        "added_p95_ms": ms(added, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django.setup()
    args.out.write_text(json.dumps(run(args.url, args.session, args.token, args.tasks), indent=2))


if __name__ == "__main__":
    main()
