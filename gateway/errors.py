"""Answers in OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.

The official clients turn the status into an exception class (400 BadRequestError, 401
AuthenticationError, 404 NotFoundError, 409 ConflictError, 429 RateLimitError, 5xx
InternalServerError) and retry 408, 409, 429 and 5xx by themselves, unless the answer says
`x-should-retry: false`. A retried generation would make (and pay for) a second task, so every
answer where retrying cannot help or would double a task says so.
"""

from __future__ import annotations

from django.http import JsonResponse

from generator.limits import Exceeded

INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
RATE_LIMIT = "requests"  # what OpenAI calls a request-rate limit's type
INSUFFICIENT_QUOTA = "insufficient_quota"
SERVER = "server_error"


class OpenAIError(Exception):
    """A refusal or failure to answer with, in OpenAI's shape.

    `retry=False` adds `x-should-retry: false`; `retry_after` (seconds) adds Retry-After.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,  # noqa: A002  (OpenAI's field name)
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
        retry: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, str(message), type, param, code
        self.retry_after, self.retry, self.headers = retry_after, retry, headers or {}

    def response(self) -> JsonResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status, headers=self.headers)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if not self.retry:
            response["x-should-retry"] = "false"
        return response


def invalid(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def rate_limited(exceeded: Exceeded) -> OpenAIError:
    """A rate or the cap on waiting tasks: nothing was made, so the client may try again later."""
    return OpenAIError(
        429, exceeded.message, type=RATE_LIMIT, code="rate_limit_exceeded", retry_after=exceeded.retry_after
    )
