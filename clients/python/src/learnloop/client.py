"""``learnloop.Client`` and ``learnloop.AsyncClient``."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple

import httpx

from ._operations import PLUGINS, AsyncCoreApi, CoreApi
from ._runtime import _NO_BODY, RetryPolicy, _AsyncCore, _AsyncOps, _SyncCore, _SyncOps, convert
from .batcher import AsyncBatcher, Batcher
from .drift import AsyncDrift, Drift
from .records import Time, as_record, outcome_record, prediction_record
from .results import BatchResult, ItemResult, RecordResult

if TYPE_CHECKING:  # pragma: no cover
    from ._operations import (
        AsyncCostApi,
        AsyncPersonaApi,
        AsyncTrustApi,
        CostApi,
        PersonaApi,
        TrustApi,
    )

__all__ = ["Client", "AsyncClient"]

_PATHS = {"prediction": "/api/v1/predictions", "outcome": "/api/v1/outcomes"}


def _check_max_batch(max_batch: int) -> int:
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch: expected a whole number >= 1, got {max_batch!r}")
    return max_batch


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path: expected a path starting with '/', e.g. /api/v1/trust/agents; got {path!r}")


def _plan(records: Iterable[Any], type: Optional[str]) -> List[Tuple[int, str, Dict[str, Any]]]:
    items = [
        (i, rec["type"], rec)
        for i, rec in ((i, as_record(r, f"records[{i}]", type)) for i, r in enumerate(records))
    ]
    if not items:
        raise ValueError("records: the batch is empty")
    return items


def _chunks(items: List[Tuple[int, str, Dict[str, Any]]], kind: str, size: int) -> Iterable[List[Tuple[int, Dict[str, Any]]]]:
    selected = [(i, rec) for i, k, rec in items if k == kind]
    for start in range(0, len(selected), size):
        yield selected[start : start + size]


class _Merge:
    """Per-chunk batch answers merged back into the order the records were given in."""

    def __init__(self, n: int) -> None:
        self.results: List[Optional[ItemResult]] = [None] * n
        self.inserted = self.duplicates = self.rejected = 0

    def add(self, chunk: List[Tuple[int, Dict[str, Any]]], answer: BatchResult) -> None:
        self.inserted += answer.inserted
        self.duplicates += answer.duplicates
        self.rejected += answer.rejected
        for item in answer.results:
            i, _ = chunk[item.index]
            self.results[i] = item.model_copy(update={"index": i})

    def result(self) -> BatchResult:
        missing = [i for i, r in enumerate(self.results) if r is None]
        if missing:  # pragma: no cover - the server answers every item
            raise RuntimeError(f"the server answered no result for records {missing[:10]}")
        return BatchResult(
            inserted=self.inserted,
            duplicates=self.duplicates,
            rejected=self.rejected,
            results=[r for r in self.results if r is not None],
        )


class Client(_SyncCore, CoreApi):
    """A synchronous learnloop client.

    ``base_url`` is the server (``http://127.0.0.1:8080``); ``api_key`` a
    reader, writer or admin key (sent as ``Authorization: Bearer``; ``None``
    sends none, for a server with ``[auth] enabled = false``); ``workspace``
    the workspace to use when a call names none (``None``: the key's own);
    ``timeout`` seconds per request; ``retry`` a :class:`RetryPolicy`;
    ``max_batch`` the most records :meth:`ingest` sends per request (the
    server's ``api.max_batch``, 1000 by default). ``transport`` is passed to
    ``httpx.Client`` (tests use it).

    The core routes are methods of the client (``list_insights``, ...);
    each plugin's routes are an attribute named after it (``ll.cost``,
    ``ll.trust``, ``ll.persona``, ``ll.drift``), all typed from the API
    document. Use it as a context manager, or call :meth:`close`.
    """

    if TYPE_CHECKING:  # pragma: no cover
        cost: CostApi
        trust: TrustApi
        persona: PersonaApi
        drift: Drift

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str] = None,
        *,
        workspace: Optional[str] = None,
        timeout: float = 10.0,
        retry: Optional[RetryPolicy] = None,
        max_batch: int = 1000,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        hdrs = self._setup(base_url, api_key, workspace, retry, headers)
        self.max_batch = _check_max_batch(max_batch)
        self._http = httpx.Client(timeout=timeout, headers=hdrs, transport=transport)
        self._client = self
        self._batchers: "weakref.WeakSet[Batcher]" = weakref.WeakSet()
        self.plugins: Dict[str, _SyncOps] = {
            name: (Drift if name == "drift" else sync)(self) for name, (sync, _) in PLUGINS.items()
        }

    def __getattr__(self, name: str) -> Any:
        plugins = self.__dict__.get("plugins")
        if plugins is not None and name in plugins:
            return plugins[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    # -- records

    def predict(
        self,
        *,
        id: str,
        plugin: str,
        subject: str,
        kind: str,
        value: Optional[float] = None,
        label: Optional[str] = None,
        confidence: Optional[float] = None,
        features: Optional[Mapping[str, Any]] = None,
        payload: Optional[Mapping[str, Any]] = None,
        event_time: Optional[Time] = None,
        workspace: Optional[str] = None,
    ) -> RecordResult:
        """Records one prediction (or recommendation); ``inserted`` or ``duplicate``.

        Raises :class:`~learnloop.InvalidInput` (422, ``field`` names the
        field), :class:`~learnloop.Conflict` (409: the id is stored with
        other content). Retried safely: the id makes it idempotent.
        """
        record = prediction_record(
            id=id, plugin=plugin, subject=subject, kind=kind, value=value, label=label,
            confidence=confidence, features=features, payload=payload, event_time=event_time,
            workspace=workspace,
        )
        return self._one(record)

    def outcome(
        self,
        *,
        id: str,
        plugin: str,
        prediction_id: str,
        value: Optional[float] = None,
        label: Optional[str] = None,
        success: Optional[bool] = None,
        quality: Optional[float] = None,
        feedback: Optional[str] = None,
        payload: Optional[Mapping[str, Any]] = None,
        event_time: Optional[Time] = None,
        workspace: Optional[str] = None,
    ) -> RecordResult:
        """Records what happened to a prediction; ``plugin`` must be the prediction's."""
        record = outcome_record(
            id=id, plugin=plugin, prediction_id=prediction_id, value=value, label=label,
            success=success, quality=quality, feedback=feedback, payload=payload,
            event_time=event_time, workspace=workspace,
        )
        return self._one(record)

    def _one(self, record: Dict[str, Any]) -> RecordResult:
        path = _PATHS[record["type"]]
        status, data = self._request("POST", path, body=record, workspace_param="workspace" not in record)
        return convert(RecordResult, data, method="POST", url=self.base_url + path, status=status)

    def ingest(
        self, records: Iterable[Any], *, type: Optional[str] = None, workspace: Optional[str] = None
    ) -> BatchResult:
        """Sends records as batches; one result per record, in the order given.

        Each record is a mapping (or a pydantic model) with ``"type":
        "prediction"`` or ``"outcome"`` (or pass ``type=`` for records that
        name none). Predictions are sent before outcomes (an outcome needs
        its prediction stored), at most ``max_batch`` per request. A record
        the server refuses is ``rejected`` in the result, with ``field`` and
        ``message``; nothing is raised for it.
        """
        items = _plan(records, type)
        merge = _Merge(len(items))
        for kind in ("prediction", "outcome"):
            for chunk in _chunks(items, kind, self.max_batch):
                path = _PATHS[kind]
                status, data = self._request(
                    "POST", path, query={"workspace": workspace}, body=[r for _, r in chunk], workspace_param=True
                )
                merge.add(chunk, convert(BatchResult, data, method="POST", url=self.base_url + path, status=status))
        return merge.result()

    def batcher(
        self,
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        block_timeout: Optional[float] = 5.0,
        on_rejected: Any = None,
        on_error: Any = None,
        workspace: Optional[str] = None,
    ) -> Batcher:
        """A background batcher sending through this client (see :class:`~learnloop.Batcher`)."""
        b = Batcher(
            self, max_batch=max_batch, flush_interval=flush_interval, max_queue=max_queue,
            block_timeout=block_timeout, on_rejected=on_rejected, on_error=on_error, workspace=workspace,
        )
        self._batchers.add(b)
        return b

    def request(
        self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None
    ) -> Any:
        """Any route, untyped: the decoded answer (errors raised as for every call).

        ``path`` starts with ``/`` (``/api/v1/trust/agents``); ``query`` is
        sent as given (the client's ``workspace`` is not added: pass it).
        """
        _check_path(path)
        _, data = self._request(method.upper(), path, query=query, body=_NO_BODY if body is None else body)
        return data

    def close(self) -> None:
        """Flushes and stops this client's batchers, then closes the connections."""
        for b in list(self._batchers):
            b.close()
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(_AsyncCore, AsyncCoreApi):
    """The asyncio twin of :class:`Client`: the same arguments and methods, awaited."""

    if TYPE_CHECKING:  # pragma: no cover
        cost: AsyncCostApi
        trust: AsyncTrustApi
        persona: AsyncPersonaApi
        drift: AsyncDrift

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str] = None,
        *,
        workspace: Optional[str] = None,
        timeout: float = 10.0,
        retry: Optional[RetryPolicy] = None,
        max_batch: int = 1000,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        hdrs = self._setup(base_url, api_key, workspace, retry, headers)
        self.max_batch = _check_max_batch(max_batch)
        self._http = httpx.AsyncClient(timeout=timeout, headers=hdrs, transport=transport)
        self._client = self
        self._batchers: "weakref.WeakSet[AsyncBatcher]" = weakref.WeakSet()
        self.plugins: Dict[str, _AsyncOps] = {
            name: (AsyncDrift if name == "drift" else asyn)(self) for name, (_, asyn) in PLUGINS.items()
        }

    def __getattr__(self, name: str) -> Any:
        plugins = self.__dict__.get("plugins")
        if plugins is not None and name in plugins:
            return plugins[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    async def predict(
        self,
        *,
        id: str,
        plugin: str,
        subject: str,
        kind: str,
        value: Optional[float] = None,
        label: Optional[str] = None,
        confidence: Optional[float] = None,
        features: Optional[Mapping[str, Any]] = None,
        payload: Optional[Mapping[str, Any]] = None,
        event_time: Optional[Time] = None,
        workspace: Optional[str] = None,
    ) -> RecordResult:
        """See :meth:`Client.predict`."""
        record = prediction_record(
            id=id, plugin=plugin, subject=subject, kind=kind, value=value, label=label,
            confidence=confidence, features=features, payload=payload, event_time=event_time,
            workspace=workspace,
        )
        return await self._one(record)

    async def outcome(
        self,
        *,
        id: str,
        plugin: str,
        prediction_id: str,
        value: Optional[float] = None,
        label: Optional[str] = None,
        success: Optional[bool] = None,
        quality: Optional[float] = None,
        feedback: Optional[str] = None,
        payload: Optional[Mapping[str, Any]] = None,
        event_time: Optional[Time] = None,
        workspace: Optional[str] = None,
    ) -> RecordResult:
        """See :meth:`Client.outcome`."""
        record = outcome_record(
            id=id, plugin=plugin, prediction_id=prediction_id, value=value, label=label,
            success=success, quality=quality, feedback=feedback, payload=payload,
            event_time=event_time, workspace=workspace,
        )
        return await self._one(record)

    async def _one(self, record: Dict[str, Any]) -> RecordResult:
        path = _PATHS[record["type"]]
        status, data = await self._request("POST", path, body=record, workspace_param="workspace" not in record)
        return convert(RecordResult, data, method="POST", url=self.base_url + path, status=status)

    async def ingest(
        self, records: Iterable[Any], *, type: Optional[str] = None, workspace: Optional[str] = None
    ) -> BatchResult:
        """See :meth:`Client.ingest`."""
        items = _plan(records, type)
        merge = _Merge(len(items))
        for kind in ("prediction", "outcome"):
            for chunk in _chunks(items, kind, self.max_batch):
                path = _PATHS[kind]
                status, data = await self._request(
                    "POST", path, query={"workspace": workspace}, body=[r for _, r in chunk], workspace_param=True
                )
                merge.add(chunk, convert(BatchResult, data, method="POST", url=self.base_url + path, status=status))
        return merge.result()

    def batcher(
        self,
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        block_timeout: Optional[float] = 5.0,
        on_rejected: Any = None,
        on_error: Any = None,
        workspace: Optional[str] = None,
    ) -> AsyncBatcher:
        """A background batcher task (see :class:`~learnloop.AsyncBatcher`); call it inside a running loop."""
        b = AsyncBatcher(
            self, max_batch=max_batch, flush_interval=flush_interval, max_queue=max_queue,
            block_timeout=block_timeout, on_rejected=on_rejected, on_error=on_error, workspace=workspace,
        )
        self._batchers.add(b)
        return b

    async def request(
        self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None
    ) -> Any:
        """See :meth:`Client.request`."""
        _check_path(path)
        _, data = await self._request(method.upper(), path, query=query, body=_NO_BODY if body is None else body)
        return data

    async def aclose(self) -> None:
        """Flushes and stops this client's batchers, then closes the connections."""
        for b in list(self._batchers):
            await b.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
