"""Domain errors. The API renders each as application/problem+json (RFC 9457) naming the field."""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or ([{"field": field, "reason": detail}] if field else [])
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ProblemError):
    status, title = 400, "Bad request"


class Unauthorized(ProblemError):
    status, title = 401, "Unauthorized"


class Forbidden(ProblemError):
    status, title = 403, "Forbidden"


class NotFound(ProblemError):
    status, title = 404, "Not found"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class Unprocessable(ProblemError):
    status, title = 422, "Unprocessable content"


class TooManyRequests(ProblemError):
    status, title = 429, "Too many requests"


class PayloadTooLarge(ProblemError):
    status, title = 413, "Content too large"
