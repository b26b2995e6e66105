"""Typed exceptions: one per kind of answer, all carrying the problem+json fields.

Every error learnloop answers is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail`` and, where one field is at fault, ``field``.
:func:`error_from_response` turns such an answer into the matching subclass of
:class:`LearnloopError`; errors without an HTTP answer (connection failures,
a full batcher queue, an answer that does not match its declared schema) are
subclasses too, with ``status`` ``None`` or the answer's status.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type

__all__ = [
    "LearnloopError",
    "InvalidInput",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "Unavailable",
    "TransportError",
    "QueueFull",
    "ResponseValidationError",
    "error_from_response",
]


class LearnloopError(Exception):
    """Base of every error this client raises.

    Attributes mirror the problem document: ``status`` (HTTP status, or
    ``None`` when there was no answer), ``type``, ``title``, ``detail`` and
    ``field`` (the offending field, when the server named one). ``retry_after``
    is the ``Retry-After`` header in seconds, when the answer had one.
    ``problem`` is the whole decoded problem document (or ``None``).
    """

    def __init__(
        self,
        detail: str,
        *,
        status: Optional[int] = None,
        type: Optional[str] = None,
        title: Optional[str] = None,
        field: Optional[str] = None,
        retry_after: Optional[float] = None,
        problem: Optional[Dict[str, Any]] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.retry_after = retry_after
        self.problem = problem
        self.method = method
        self.url = url
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        status = f"{self.status} " if self.status is not None else ""
        title = f"{self.title}: " if self.title else ""
        field = f" (field: {self.field})" if self.field else ""
        return f"{where}{status}{title}{self.detail}{field}"


class InvalidInput(LearnloopError):
    """400 (the request could not be read) or 422 (a field is invalid)."""


class Unauthorized(LearnloopError):
    """401: no key, or an unknown or revoked key."""


class Forbidden(LearnloopError):
    """403: the key's role or workspace does not allow this."""


class NotFound(LearnloopError):
    """404: no such route, plugin or resource."""


class MethodNotAllowed(LearnloopError):
    """405: the path does not take this method."""


class Conflict(LearnloopError):
    """409: e.g. a record id already stored with other content."""


class PayloadTooLarge(LearnloopError):
    """413: the body exceeds ``api.max_body_bytes`` or the batch ``api.max_batch``."""


class RateLimited(LearnloopError):
    """429: too many requests (retried by the client first, honouring Retry-After)."""


class ServerError(LearnloopError):
    """A 5xx answer."""


class Unavailable(ServerError):
    """503 or 507: the server (or a plugin, or its storage) cannot serve now."""


class TransportError(LearnloopError):
    """No answer: the connection failed or timed out (after the client's retries)."""


class QueueFull(LearnloopError):
    """The batcher's queue stayed full for its whole ``block_timeout``."""


class ResponseValidationError(LearnloopError):
    """An answer that does not match the type the API document declares for it."""


_BY_STATUS: Dict[int, Type[LearnloopError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: RateLimited,
    503: Unavailable,
    507: Unavailable,
}


def error_class(status: int) -> Type[LearnloopError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return LearnloopError


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        import datetime as _dt

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        seconds = (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_from_response(
    status: int,
    headers: Any,
    content: bytes,
    *,
    method: Optional[str] = None,
    url: Optional[str] = None,
) -> LearnloopError:
    """The typed error for an error answer (problem+json or anything else)."""
    problem: Optional[Dict[str, Any]] = None
    try:
        decoded = json.loads(content.decode("utf-8")) if content else None
        if isinstance(decoded, dict):
            problem = decoded
    except (UnicodeDecodeError, ValueError):
        problem = None
    retry_after = parse_retry_after(headers.get("retry-after") if headers is not None else None)
    cls = error_class(status)
    if problem is not None and "detail" in problem:
        return cls(
            str(problem.get("detail")),
            status=status,
            type=_opt_str(problem.get("type")),
            title=_opt_str(problem.get("title")),
            field=_opt_str(problem.get("field")),
            retry_after=retry_after,
            problem=problem,
            method=method,
            url=url,
        )
    text = content.decode("utf-8", errors="replace").strip()
    detail = text[:500] if text else "the answer had no problem document"
    return cls(detail, status=status, retry_after=retry_after, problem=problem, method=method, url=url)


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)
