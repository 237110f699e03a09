"""A local OpenAI-compatible chat-completions server: a real http.server in a thread.

POST /v1/chat/completions records each request (path, headers, JSON body) and plays the next
scripted Reply, or the default one: a chat.completion whose content is `answer`. A Reply can
set the status, the body (a dict is sent as JSON, bytes as they are), a delay before the
answer's head, and a trickle (the body sent a byte at a time, `trickle` seconds apart).

    def test_it(fake_llm, settings):
        fake_llm.script(Reply.content("a lighthouse at dawn"))
        settings.PROMPT_LLM_BASE_URL = fake_llm.base_url
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def completion(content: str | None, *, finish_reason: str = "stop", model: str = "qwen-plus") -> dict:
    """A chat.completion body as OpenAI and DashScope's compatible mode send it."""
    return {
        "id": "chatcmpl-0123456789",
        "object": "chat.completion",
        "created": 1_900_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
    }


def vendor_error(message: str, *, code: str, type_: str = "invalid_request_error") -> dict:
    """OpenAI's (and DashScope compatible mode's) error body."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@dataclass
class Reply:
    status: int = 200
    body: dict | bytes | None = None
    delay: float = 0.0  # seconds before the answer's head
    trickle: float = 0.0  # seconds between bytes of the body
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def content(cls, text: str | None, **kwargs: Any) -> Reply:
        finish_reason = kwargs.pop("finish_reason", "stop")
        return cls(body=completion(text, finish_reason=finish_reason), **kwargs)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLLM:
    url: str = ""
    answer: str = "a lighthouse on a cliff at dawn, oil painting, warm light"
    requests: list[Recorded] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else Reply.content(self.answer)


def handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            with fake.lock:
                fake.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path != "/v1/chat/completions":
                self._send(Reply(status=404, body=vendor_error("Not found", code="not_found")))
                return
            self._send(fake.next_reply())

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body or {}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if reply.trickle:
                    for index in range(len(data)):
                        self.wfile.write(data[index : index + 1])
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                else:
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout): as a real server would see it

    return Handler


@contextmanager
def serving() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(name="fake_llm")
def fake_llm_fixture(settings) -> Iterator[FakeLLM]:
    """A fake chat-completions server, with the prompt helper pointed at it."""
    with serving() as fake:
        settings.PROMPT_LLM_BASE_URL = fake.base_url
        settings.PROMPT_LLM_API_KEY = "sk-test-0123456789abcdef"
        settings.PROMPT_LLM_MODEL = "qwen-plus"
        settings.PROMPT_LLM_TIMEOUT_SECONDS = 5
        yield fake
