"""Background batching of predictions and outcomes.

An agent records a prediction per decision; sending each one as its own
request costs a round trip on the agent's path. A batcher queues records and
a background worker sends them in batches:

* **by size**: as soon as ``max_batch`` records are waiting;
* **by time**: at most ``flush_interval`` seconds after the first waiting record;
* **on demand and at the end**: :meth:`Batcher.flush`, :meth:`Batcher.close`,
  leaving a ``with`` block, and (for the thread batcher) interpreter exit.

**The queue is bounded** (``max_queue`` records). When it is full, adding a
record blocks until the worker makes room, for at most ``block_timeout``
seconds (``None``: as long as it takes), then raises
:class:`~learnloop.QueueFull`: the record is not queued, and the caller
decides what to do with it. Records are never dropped silently:

* a record the server refuses is a :class:`~learnloop.Rejection` (type, id,
  field, message and the record itself), appended to ``rejected`` and passed
  to ``on_rejected(rejection)`` if given;
* a batch that could not be delivered (the client's retries exhausted, or
  any other error) is a :class:`FailedBatch` (the error and every record of
  the batch), appended to ``failed`` and passed to ``on_error(failed_batch)``
  if given, and logged on the ``learnloop`` logger. Sending its records
  again is safe: ingest is idempotent by id.

Predictions of a batch are sent before its outcomes, and batches in the
order they were queued, so an outcome queued after its prediction finds it
stored.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .errors import LearnloopError, QueueFull
from .records import as_record, outcome_record, prediction_record
from .results import BatchResult, Rejection

if TYPE_CHECKING:  # pragma: no cover
    from .client import AsyncClient, Client

__all__ = ["Batcher", "AsyncBatcher", "FailedBatch"]

log = logging.getLogger("learnloop")


@dataclass
class FailedBatch:
    """A batch the batcher could not deliver: the error and every record in it."""

    error: BaseException
    records: List[Dict[str, Any]]


def _check(max_batch: int, flush_interval: float, max_queue: int, block_timeout: Optional[float]) -> None:
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch: expected a whole number >= 1, got {max_batch!r}")
    if not isinstance(flush_interval, (int, float)) or not flush_interval > 0:
        raise ValueError(f"flush_interval: expected seconds > 0, got {flush_interval!r}")
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ValueError(f"max_queue: expected a whole number >= 1, got {max_queue!r}")
    if block_timeout is not None and (not isinstance(block_timeout, (int, float)) or block_timeout < 0):
        raise ValueError(f"block_timeout: expected seconds >= 0 or None, got {block_timeout!r}")


class _Outcomes:
    """What both batchers record about what they sent."""

    def __init__(self, on_rejected: Optional[Callable[..., Any]], on_error: Optional[Callable[..., Any]]) -> None:
        if on_rejected is not None and not callable(on_rejected):
            raise TypeError("on_rejected: expected a callable taking a Rejection")
        if on_error is not None and not callable(on_error):
            raise TypeError("on_error: expected a callable taking a FailedBatch")
        self.on_rejected = on_rejected
        self.on_error = on_error
        self.rejected: List[Rejection] = []
        self.failed: List[FailedBatch] = []
        self.inserted = 0
        self.duplicates = 0
        self.sent_batches = 0

    def _callback(self, fn: Callable[..., Any], arg: Any) -> Any:
        try:
            return fn(arg)
        except Exception:  # a callback's bug must not stop the worker
            log.exception("learnloop batcher: the %s callback raised", getattr(fn, "__name__", "callback"))
            return None

    def delivered(self, records: List[Dict[str, Any]], result: BatchResult) -> List[Any]:
        self.sent_batches += 1
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        pending = []
        for item in result.results:
            if item.status != "rejected":
                continue
            record = records[item.index]
            r = Rejection(
                type=record["type"], id=item.id, field=item.field, message=item.message or "", record=record
            )
            self.rejected.append(r)
            log.warning("learnloop batcher: %s %s rejected: %s: %s", r.type, r.id, r.field, r.message)
            if self.on_rejected is not None:
                pending.append(self._callback(self.on_rejected, r))
        return pending

    def failure(self, records: List[Dict[str, Any]], error: BaseException) -> List[Any]:
        f = FailedBatch(error=error, records=records)
        self.failed.append(f)
        log.error("learnloop batcher: a batch of %d records was not delivered: %s", len(records), error)
        if self.on_error is not None:
            return [self._callback(self.on_error, f)]
        return []


_FLUSH = "flush"
_CLOSE = "close"
_RECORD = "record"


class Batcher(_Outcomes):
    """Queues records and sends them from a background thread (see the module's doc).

    Made by :meth:`Client.batcher`. ``rejected``, ``failed``, ``inserted``
    and ``duplicates`` say what became of what was sent.
    """

    def __init__(
        self,
        client: "Client",
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        block_timeout: Optional[float] = 5.0,
        on_rejected: Optional[Callable[[Rejection], Any]] = None,
        on_error: Optional[Callable[[FailedBatch], Any]] = None,
        workspace: Optional[str] = None,
    ) -> None:
        _check(max_batch, flush_interval, max_queue, block_timeout)
        super().__init__(on_rejected, on_error)
        self._client = client
        self.max_batch = max_batch
        self.flush_interval = float(flush_interval)
        self.max_queue = max_queue
        self.block_timeout = block_timeout
        self.workspace = workspace
        # Records and control items share the queue, so a flush covers
        # everything queued before it; max_queue bounds the records.
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._room = threading.BoundedSemaphore(max_queue)
        self._queued = 0
        self._count_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="learnloop-batcher", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- adding

    def predict(self, **fields: Any) -> None:
        """Queues a prediction (the fields of :meth:`Client.predict`)."""
        self.add(prediction_record(**fields))

    def outcome(self, **fields: Any) -> None:
        """Queues an outcome (the fields of :meth:`Client.outcome`)."""
        self.add(outcome_record(**fields))

    def add(self, record: Any) -> None:
        """Queues a record (a mapping with ``type``); blocks while the queue is full, up to ``block_timeout``."""
        rec = as_record(record, "record")
        if self._closed:
            raise LearnloopError("the batcher is closed: records can no longer be added")
        if not self._room.acquire(timeout=self.block_timeout):
            raise QueueFull(
                f"the batcher's queue held {self.max_queue} records for {self.block_timeout} s "
                f"(record {rec.get('id')!r} was not queued): the server is slower than records arrive, "
                "or unreachable; raise max_queue or block_timeout, or send less"
            )
        with self._count_lock:
            self._queued += 1
        self._queue.put((_RECORD, rec))

    def pending(self) -> int:
        """Records queued and not yet answered."""
        with self._count_lock:
            return self._queued

    # -- flushing

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends everything queued so far; ``True`` once it is answered, ``False`` if ``timeout`` ran out."""
        if not self._thread.is_alive():
            return self.pending() == 0
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        return done.wait(timeout)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Sends what is queued and stops the worker; ``False`` if ``timeout`` ran out first."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._queue.put((_CLOSE, None))
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> "Batcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the worker

    def _run(self) -> None:
        batch: List[Dict[str, Any]] = []
        deadline: Optional[float] = None
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                kind, item = self._queue.get(timeout=wait)
            except queue.Empty:
                batch, deadline = self._send(batch), None
                continue
            if kind == _RECORD:
                batch.append(item)
                if deadline is None:
                    deadline = time.monotonic() + self.flush_interval
                if len(batch) >= self.max_batch:
                    batch, deadline = self._send(batch), None
            elif kind == _FLUSH:
                batch, deadline = self._send(batch), None
                item.set()
            else:
                self._send(batch)
                return

    def _send(self, batch: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        if not batch:
            return []
        try:
            result = self._client.ingest(batch, workspace=self.workspace)
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            self.failure(batch, e)
        else:
            self.delivered(batch, result)
        finally:
            with self._count_lock:
                self._queued -= len(batch)
            for _ in batch:
                self._room.release()
        return []


def _close_at_exit(ref: "weakref.ref[Batcher]") -> None:
    b = ref()
    if b is not None:
        b.close(timeout=30.0)


class AsyncBatcher(_Outcomes):
    """The asyncio twin of :class:`Batcher`: a task in the running loop.

    ``await add(...)``/``predict``/``outcome`` wait while the queue is full
    (up to ``block_timeout``); ``await flush()``; ``await aclose()`` or
    ``async with``. There is no exit hook for a loop: close it before the
    loop ends. Callbacks may be plain functions or coroutines.
    """

    def __init__(
        self,
        client: "AsyncClient",
        *,
        max_batch: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        block_timeout: Optional[float] = 5.0,
        on_rejected: Optional[Callable[[Rejection], Any]] = None,
        on_error: Optional[Callable[[FailedBatch], Any]] = None,
        workspace: Optional[str] = None,
    ) -> None:
        _check(max_batch, flush_interval, max_queue, block_timeout)
        super().__init__(on_rejected, on_error)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("AsyncClient.batcher() needs a running event loop: call it inside async code") from None
        self._client = client
        self.max_batch = max_batch
        self.flush_interval = float(flush_interval)
        self.max_queue = max_queue
        self.block_timeout = block_timeout
        self.workspace = workspace
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self._room = asyncio.Semaphore(max_queue)
        self._queued = 0
        self._closed = False
        self._task = loop.create_task(self._run())

    async def predict(self, **fields: Any) -> None:
        """Queues a prediction."""
        await self.add(prediction_record(**fields))

    async def outcome(self, **fields: Any) -> None:
        """Queues an outcome."""
        await self.add(outcome_record(**fields))

    async def add(self, record: Any) -> None:
        """Queues a record; waits while the queue is full, up to ``block_timeout``, then raises QueueFull."""
        rec = as_record(record, "record")
        if self._closed:
            raise LearnloopError("the batcher is closed: records can no longer be added")
        try:
            await asyncio.wait_for(self._room.acquire(), self.block_timeout)
        except asyncio.TimeoutError:
            raise QueueFull(
                f"the batcher's queue held {self.max_queue} records for {self.block_timeout} s "
                f"(record {rec.get('id')!r} was not queued): the server is slower than records arrive, "
                "or unreachable; raise max_queue or block_timeout, or send less"
            ) from None
        self._queued += 1
        self._queue.put_nowait((_RECORD, rec))

    def pending(self) -> int:
        """Records queued and not yet answered."""
        return self._queued

    async def flush(self) -> None:
        """Sends everything queued so far and waits for the answers."""
        if self._task.done():
            return
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((_FLUSH, done))
        await asyncio.shield(done)

    async def aclose(self) -> None:
        """Sends what is queued and stops the task."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait((_CLOSE, None))
        await asyncio.shield(self._task)

    async def __aenter__(self) -> "AsyncBatcher":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _run(self) -> None:
        batch: List[Dict[str, Any]] = []
        deadline: Optional[float] = None
        loop = asyncio.get_running_loop()
        while True:
            wait = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                kind, item = await asyncio.wait_for(self._queue.get(), wait)
            except asyncio.TimeoutError:
                batch, deadline = await self._send(batch), None
                continue
            if kind == _RECORD:
                batch.append(item)
                if deadline is None:
                    deadline = loop.time() + self.flush_interval
                if len(batch) >= self.max_batch:
                    batch, deadline = await self._send(batch), None
            elif kind == _FLUSH:
                batch, deadline = await self._send(batch), None
                if not item.done():
                    item.set_result(None)
            else:
                await self._send(batch)
                return

    async def _send(self, batch: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        if not batch:
            return []
        try:
            result = await self._client.ingest(batch, workspace=self.workspace)
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            pending = self.failure(batch, e)
        else:
            pending = self.delivered(batch, result)
        finally:
            for _ in batch:
                self._room.release()
            self._queued -= len(batch)
        for p in pending:
            if inspect.isawaitable(p):
                try:
                    await p
                except Exception:
                    log.exception("learnloop batcher: a callback raised")
        return []
