"""A small client for OpenAI-compatible chat completions (the prompt helper's LLM).

POST {PROMPT_LLM_BASE_URL}/chat/completions with a Bearer key: DashScope's compatible mode
(Qwen), SiliconFlow, Ark, OpenAI, a local Ollama or vLLM all speak it. The whole call, body
included, takes at most PROMPT_LLM_TIMEOUT_SECONDS: a server that trickles its answer is cut
off at the deadline. Failures come back as one LLMError with a `kind` the helper turns into a
message for the person. The key is never logged; prompts only with LOG_PROMPTS.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import requests
import urllib3
from django.conf import settings

from generator.providers import http

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # a chat answer of a few prompts is a few kilobytes
CONNECT_TIMEOUT_SECONDS = 5.0

# LLMError kinds
TIMEOUT = "timeout"
CONNECTION = "connection"
RATE_LIMITED = "rate_limited"  # the LLM service's own 429
SERVER_ERROR = "server_error"  # 5xx
REJECTED = "rejected"  # another 4xx: a wrong key, model or request (the operator's to fix)
CONTENT_FILTER = "content_filter"  # the vendor's moderation refused the prompt
MALFORMED = "malformed"  # not JSON, or not the chat-completions shape
EMPTY = "empty"  # no choices, or empty content
KINDS = (TIMEOUT, CONNECTION, RATE_LIMITED, SERVER_ERROR, REJECTED, CONTENT_FILTER, MALFORMED, EMPTY)

# Vendor error codes that mean "moderation refused this input" (DashScope, Ark, OpenAI).
CONTENT_FILTER_CODES = {"data_inspection_failed", "datainspectionfailed", "content_filter", "content_policy_violation"}


class LLMError(Exception):
    def __init__(self, kind: str, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Answer:
    content: str
    finish_reason: str = ""


def configured() -> bool:
    return bool(settings.PROMPT_LLM_BASE_URL and settings.PROMPT_LLM_MODEL)


def request_body(messages: list[dict[str, str]], *, temperature: float, max_tokens: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": settings.PROMPT_LLM_MODEL, "messages": messages, "temperature": temperature}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def chat(messages: list[dict[str, str]], *, temperature: float = 0.7, max_tokens: int | None = None) -> Answer:
    """The first choice's message content; LLMError for anything else."""
    seconds = float(settings.PROMPT_LLM_TIMEOUT_SECONDS)
    deadline = time.monotonic() + seconds
    url = f"{settings.PROMPT_LLM_BASE_URL}/chat/completions"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.PROMPT_LLM_API_KEY:
        headers["Authorization"] = f"Bearer {settings.PROMPT_LLM_API_KEY}"
    body = request_body(messages, temperature=temperature, max_tokens=max_tokens)
    if settings.LOG_PROMPTS:
        logger.info("prompt helper: asking %s (%s) messages=%r", url, settings.PROMPT_LLM_MODEL, messages)
    # `total` caps connect plus waiting for the answer's head (requests passes a urllib3 Timeout
    # on as it is); reading the body is capped by the deadline below.
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, seconds), read=seconds, total=seconds)
    started = time.monotonic()
    try:
        with http.session().post(
            url, json=body, headers=headers, timeout=cast(Any, timeout), stream=True, allow_redirects=False
        ) as response:
            raw = _read_body(response, deadline)
            status = response.status_code
    except requests.Timeout as exc:
        raise LLMError(TIMEOUT) from exc
    except requests.RequestException as exc:
        raise LLMError(CONNECTION, type(exc).__name__) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise LLMError(TIMEOUT) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise LLMError(CONNECTION, type(exc).__name__) from exc
    logger.info("prompt helper: HTTP %s in %.2f s", status, time.monotonic() - started)
    answer = _parse(status, raw)
    if settings.LOG_PROMPTS:
        logger.info("prompt helper: answer=%r finish_reason=%s", answer.content, answer.finish_reason)
    return answer


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """The body, within the deadline and MAX_BODY_BYTES. read1 returns whatever has arrived, so
    a trickling body meets the deadline check."""
    buffer = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise LLMError(TIMEOUT)
        chunk = response.raw.read1(16 * 1024, decode_content=True)
        if not chunk:
            return bytes(buffer)
        buffer += chunk
        if len(buffer) > MAX_BODY_BYTES:
            raise LLMError(MALFORMED, "answer too large")


def _parse(status: int, raw: bytes) -> Answer:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if status >= 400 or 300 <= status < 400:
        raise _http_error(status, data)
    if not isinstance(data, dict):
        raise LLMError(MALFORMED, "not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise LLMError(MALFORMED, "no choices list")
    if not choices:
        raise LLMError(EMPTY, "no choices")
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message")
    finish_reason = first.get("finish_reason") or ""
    finish_reason = finish_reason if isinstance(finish_reason, str) else ""
    if finish_reason == "content_filter":
        raise LLMError(CONTENT_FILTER, "finish_reason content_filter")
    if not isinstance(message, dict):
        raise LLMError(MALFORMED, "no message")
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None and message.get("refusal"):  # OpenAI's structured refusal
        raise LLMError(CONTENT_FILTER, "refusal")
    if content is not None and not isinstance(content, str):
        raise LLMError(MALFORMED, "content is not text")
    if not content or not content.strip():
        raise LLMError(EMPTY, "empty content")
    return Answer(content=content, finish_reason=finish_reason)


def vendor_error(data: Any) -> tuple[str, str]:
    """(code, message) from OpenAI-style `{"error": {...}}`, DashScope's `{"code", "message"}`
    or `{"detail": ...}` bodies; empty strings when there is none."""
    if not isinstance(data, dict):
        return "", ""
    inner = data.get("error", data)
    if isinstance(inner, str):
        return "", inner
    if not isinstance(inner, dict):
        return "", ""
    code = inner.get("code") or inner.get("type") or ""
    message = inner.get("message") or inner.get("detail") or data.get("message") or ""
    return str(code), str(message)


def _http_error(status: int, data: Any) -> LLMError:
    code, message = vendor_error(data)
    detail = redact(f"{code} {message}".strip())[:300]
    logger.warning("prompt helper: the LLM service answered HTTP %s %s", status, detail)
    if code.lower().replace("_", "").replace(".", "") in {c.replace("_", "") for c in CONTENT_FILTER_CODES}:
        return LLMError(CONTENT_FILTER, detail, status=status)
    if status == 429:
        return LLMError(RATE_LIMITED, detail, status=status)
    if status >= 500 or status in (408, 425):
        return LLMError(SERVER_ERROR, detail, status=status)
    return LLMError(REJECTED, detail, status=status)


def redact(text: str) -> str:
    """The text without the API key in it (a vendor may echo part of a bad key back)."""
    key = settings.PROMPT_LLM_API_KEY
    return text.replace(key, "[key]") if key else text
