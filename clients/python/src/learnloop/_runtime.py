"""What the client and the generated operations share: retries, encoding, decoding.

Nothing here is generated. ``_operations.py`` (generated) calls
:meth:`_SyncOps._call` / :meth:`_AsyncOps._call`, which end in
:meth:`_Core._request` of the client.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import enum
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Tuple
from urllib.parse import quote

import httpx
import pydantic

from .errors import (
    InvalidInput,
    LearnloopError,
    ResponseValidationError,
    TransportError,
    error_from_response,
)

if TYPE_CHECKING:  # pragma: no cover
    from .client import AsyncClient, Client

__version__ = "0.1.0"

#: Paths whose POST is idempotent by record id (retrying them is always safe).
INGEST_PATHS = frozenset({"/api/v1/predictions", "/api/v1/outcomes"})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long the client retries a request.

    A request is tried at most ``max_attempts`` times (1: never retried).
    Retried: answers whose status is in ``retry_statuses`` (429, 502, 503,
    504, 507: the store was out of space and stored nothing) and connection
    errors. Never retried: any other 4xx (the request
    itself is wrong) or 5xx. The wait before try ``n + 1`` is
    ``min(max_backoff, initial_backoff * multiplier ** (n - 1))`` scaled by a
    random factor in ``[1 - jitter, 1]``, or the answer's ``Retry-After``
    when it has one. A ``Retry-After`` longer than ``max_retry_after`` is not
    waited for: the error is raised at once (its ``retry_after`` says how
    long the server asked for).

    Ingest (``POST /api/v1/predictions`` and ``/outcomes``), GET, PUT and
    DELETE are idempotent, so every retryable failure is retried. Other POSTs
    (a plugin route may record something, e.g. trust's ``POST /route`` logs
    its decision) are retried only when the server cannot have acted on them:
    429, 503, 507 and failures to connect; set ``retry_unsafe_posts=True`` to
    retry them on 502, 504 and read errors too.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    retry_statuses: FrozenSet[int] = frozenset({429, 502, 503, 504, 507})
    retry_unsafe_posts: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be a whole number >= 1, got {self.max_attempts!r}")
        for name in ("initial_backoff", "max_backoff", "multiplier", "max_retry_after"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v != v or v < 0:
                raise ValueError(f"{name}: must be a number >= 0, got {v!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter: must be a number from 0 to 1, got {self.jitter!r}")
        bad = [s for s in self.retry_statuses if not isinstance(s, int) or s < 400 or (400 <= s < 500 and s != 429)]
        if bad:
            raise ValueError(f"retry_statuses: only 429 and 5xx statuses may be retried, got {sorted(bad)!r}")

    def backoff(self, attempt: int, rng: Optional[random.Random] = None) -> float:
        """The wait after failed try number ``attempt`` (1-based), jitter applied."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        r = (rng or random).random()
        return base * (1.0 - self.jitter * r)


NO_RETRY = RetryPolicy(max_attempts=1)


def path_param(value: Any) -> str:
    """A path segment, percent-encoded (``/`` included)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def rfc3339(value: _dt.datetime) -> str:
    """An aware datetime as RFC 3339 (``Z`` for UTC); a naive one is refused."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone: learnloop needs an absolute time "
            "(use datetime.now(timezone.utc) or attach a tzinfo)"
        )
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _query_value(name: str, value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.datetime):
        try:
            return rfc3339(value)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError(f"{name}: {value!r} is not a finite number")
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"{name}: cannot send a {type(value).__name__} as a query parameter")


def encode_query(query: Optional[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """Query parameters as pairs: ``None`` left out, lists repeated, bools ``true``/``false``."""
    out: List[Tuple[str, str]] = []
    for name, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out.extend((name, _query_value(name, v)) for v in value if v is not None)
        else:
            out.append((name, _query_value(name, value)))
    return out


def to_json(value: Any, where: str = "body") -> Any:
    """Plain JSON data from models, enums, datetimes, mappings and sequences."""
    if isinstance(value, pydantic.BaseModel):
        return to_json(value.model_dump(mode="json", by_alias=True, exclude_none=True), where)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        try:
            return rfc3339(value)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError(f"{where}: {value!r} is not a finite number (JSON has no NaN or infinity)")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{where}: cannot send a {type(value).__name__} as JSON")


def body_fields(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """A request body from keyword fields: the ones left as ``None`` are left out."""
    return {k: v for k, v in fields.items() if v is not None}


_ADAPTERS: Dict[Any, pydantic.TypeAdapter] = {}


def convert(tp: Any, data: Any, *, method: str, url: str, status: int) -> Any:
    """``data`` validated as ``tp`` (the type the API document declares)."""
    if tp is Any:
        return data
    adapter = _ADAPTERS.get(tp)
    if adapter is None:
        adapter = _ADAPTERS[tp] = pydantic.TypeAdapter(tp)
    try:
        return adapter.validate_python(data)
    except pydantic.ValidationError as e:
        raise ResponseValidationError(
            f"the answer does not match its declared type {getattr(tp, '__name__', tp)}: {e}",
            status=status,
            method=method,
            url=url,
        ) from e


_NO_BODY = object()


class _Core:
    """The HTTP side of both clients: URL, key, workspace, retries."""

    base_url: str
    workspace: Optional[str]
    retry: RetryPolicy

    def _setup(
        self,
        base_url: str,
        api_key: Optional[str],
        workspace: Optional[str],
        retry: Optional[RetryPolicy],
        headers: Optional[Mapping[str, str]],
    ) -> Dict[str, str]:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: expected an http:// or https:// URL, got {base_url!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key: must be a non-empty string (or None to send no key)")
        if workspace is not None and (not isinstance(workspace, str) or not workspace):
            raise ValueError(f"workspace: must be a non-empty string or None, got {workspace!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry: expected a learnloop.RetryPolicy, got {type(retry).__name__}")
        self.base_url = base_url.rstrip("/")
        self.workspace = workspace
        self.retry = retry if retry is not None else RetryPolicy()
        self._rng = random.Random()
        out = {"Accept": "application/json", "User-Agent": f"learnloop-python/{__version__}"}
        if api_key is not None:
            out["Authorization"] = f"Bearer {api_key.strip()}"
        out.update(headers or {})
        return out

    def _prepare(
        self, method: str, path: str, query: Optional[Mapping[str, Any]], body: Any, workspace_param: bool
    ) -> Tuple[List[Tuple[str, str]], Optional[bytes], Dict[str, str]]:
        q = dict(query or {})
        if workspace_param and q.get("workspace") is None and self.workspace is not None:
            q["workspace"] = self.workspace
        params = encode_query(q)
        headers: Dict[str, str] = {}
        content: Optional[bytes] = None
        if body is not _NO_BODY:
            data = to_json(body)
            try:
                content = json.dumps(data, allow_nan=False, separators=(",", ":")).encode("utf-8")
            except ValueError as e:  # pragma: no cover - to_json refuses NaN first
                raise InvalidInput(f"the body is not JSON: {e}") from None
            headers["Content-Type"] = "application/json"
        return params, content, headers

    def _safe(self, method: str, path: str) -> bool:
        """Whether repeating the request can do no harm (idempotent)."""
        return method in _IDEMPOTENT_METHODS or path in INGEST_PATHS or self.retry.retry_unsafe_posts

    def _should_retry_status(self, method: str, path: str, status: int) -> bool:
        if status not in self.retry.retry_statuses:
            return False
        # 429, 503 and 507: the server refused before acting, so any request may be repeated.
        return self._safe(method, path) or status in (429, 503, 507)

    def _should_retry_exc(self, method: str, path: str, exc: Exception) -> bool:
        # A failure to connect: the request never reached the server.
        return self._safe(method, path) or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))

    def _delay(self, attempt: int, error: LearnloopError) -> Optional[float]:
        """How long to wait before the next try; ``None``: do not retry."""
        if error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after:
                return None
            return error.retry_after
        return self.retry.backoff(attempt, self._rng)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            try:
                return response.json()
            except ValueError as e:
                raise ResponseValidationError(
                    f"the answer says it is JSON but is not: {e}",
                    status=response.status_code,
                    method=response.request.method,
                    url=str(response.request.url),
                ) from None
        return response.text


class _SyncCore(_Core):
    _http: httpx.Client

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = _NO_BODY,
        workspace_param: bool = False,
    ) -> Tuple[int, Any]:
        params, content, headers = self._prepare(method, path, query, body, workspace_param)
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, url, params=params, content=content, headers=headers)
            except httpx.TransportError as e:
                if attempt < self.retry.max_attempts and self._should_retry_exc(method, path, e):
                    time.sleep(self.retry.backoff(attempt, self._rng))
                    continue
                raise TransportError(
                    f"no answer after {attempt} attempt(s): {type(e).__name__}: {e}", method=method, url=url
                ) from e
            if response.status_code < 400:
                return response.status_code, self._decode(response)
            error = error_from_response(
                response.status_code, response.headers, response.content, method=method, url=url
            )
            if attempt < self.retry.max_attempts and self._should_retry_status(method, path, response.status_code):
                delay = self._delay(attempt, error)
                if delay is not None:
                    time.sleep(delay)
                    continue
            raise error

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = _NO_BODY,
        response: Any = Any,
        workspace_param: bool = False,
    ) -> Any:
        status, data = self._request(method, path, query=query, body=body, workspace_param=workspace_param)
        return convert(response, data, method=method, url=self.base_url + path, status=status)


class _AsyncCore(_Core):
    _http: httpx.AsyncClient

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = _NO_BODY,
        workspace_param: bool = False,
    ) -> Tuple[int, Any]:
        params, content, headers = self._prepare(method, path, query, body, workspace_param)
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, url, params=params, content=content, headers=headers)
            except httpx.TransportError as e:
                if attempt < self.retry.max_attempts and self._should_retry_exc(method, path, e):
                    await asyncio.sleep(self.retry.backoff(attempt, self._rng))
                    continue
                raise TransportError(
                    f"no answer after {attempt} attempt(s): {type(e).__name__}: {e}", method=method, url=url
                ) from e
            if response.status_code < 400:
                return response.status_code, self._decode(response)
            error = error_from_response(
                response.status_code, response.headers, response.content, method=method, url=url
            )
            if attempt < self.retry.max_attempts and self._should_retry_status(method, path, response.status_code):
                delay = self._delay(attempt, error)
                if delay is not None:
                    await asyncio.sleep(delay)
                    continue
            raise error

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = _NO_BODY,
        response: Any = Any,
        workspace_param: bool = False,
    ) -> Any:
        status, data = await self._request(method, path, query=query, body=body, workspace_param=workspace_param)
        return convert(response, data, method=method, url=self.base_url + path, status=status)


class _SyncOps:
    """Base of the generated synchronous operation groups."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return _SyncCore._call(self._client, method, path, **kw)


class _AsyncOps:
    """Base of the generated asynchronous operation groups."""

    def __init__(self, client: "AsyncClient") -> None:
        self._client = client

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        return await _AsyncCore._call(self._client, method, path, **kw)


__all__ = [
    "RetryPolicy",
    "NO_RETRY",
    "path_param",
    "body_fields",
    "encode_query",
    "to_json",
    "rfc3339",
    "convert",
]
