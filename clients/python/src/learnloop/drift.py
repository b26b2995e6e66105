"""The drift plugin's class with local A/B assignment on top of the generated routes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List, Optional, Tuple

from pydantic import BaseModel, ConfigDict

from . import abtest
from ._operations import AsyncDriftApi, DriftApi
from ._runtime import path_param
from .errors import ResponseValidationError

__all__ = ["Assignment", "Drift", "AsyncDrift"]


class Assignment(BaseModel):
    """A unit's arm in an A/B test: the same fields as ``GET .../assign`` answers."""

    model_config = ConfigDict(extra="allow")

    test: str
    unit: str
    arm: int
    version: str
    fraction: float
    split: List[float]


class _Definition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    versions: List[str]
    split: List[float]


def _definition(test_id: str, data: Any) -> _Definition:
    try:
        d = _Definition.model_validate(data)
    except Exception as e:  # pydantic.ValidationError
        raise ResponseValidationError(f"A/B test {test_id!r}: the definition lacks versions or split: {e}") from e
    if not d.split or len(d.split) != len(d.versions):
        raise ResponseValidationError(
            f"A/B test {test_id!r}: {len(d.versions)} versions but {len(d.split)} split shares"
        )
    return d


def _assignment(test_id: str, unit: str, d: _Definition) -> Assignment:
    arm = abtest.assign(test_id, unit, d.split)
    return Assignment(
        test=test_id, unit=unit, arm=arm, version=d.versions[arm],
        fraction=abtest.unit_fraction(test_id, unit), split=list(d.split),
    )


class Drift(DriftApi):
    """The drift plugin's routes, plus :meth:`assign_local`."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._tests: Dict[Tuple[Optional[str], str], _Definition] = {}
        self._lock = threading.Lock()

    def assign_local(self, test_id: str, unit: str, *, workspace: Optional[str] = None, refresh: bool = False) -> Assignment:
        """The unit's arm, computed here with the server's hash.

        The test's definition (versions and split) is fetched once per
        (workspace, test) with ``GET /api/v1/drift/ab_tests/{test}`` and
        cached: a test's split never changes (another definition under the
        same id is refused). ``refresh=True`` fetches it again.
        """
        key = (workspace or self._client.workspace, test_id)
        with self._lock:
            d = None if refresh else self._tests.get(key)
        if d is None:
            data = self._client._call(
                "GET", f"/api/v1/drift/ab_tests/{path_param(test_id)}",
                query={"workspace": workspace}, workspace_param=True,
            )
            d = _definition(test_id, data)
            with self._lock:
                self._tests[key] = d
        return _assignment(test_id, unit, d)

    def forget(self) -> None:
        """Drops the cached test definitions."""
        with self._lock:
            self._tests.clear()


class AsyncDrift(AsyncDriftApi):
    """The asyncio twin of :class:`Drift`."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._tests: Dict[Tuple[Optional[str], str], _Definition] = {}
        self._lock: Optional[asyncio.Lock] = None

    async def assign_local(
        self, test_id: str, unit: str, *, workspace: Optional[str] = None, refresh: bool = False
    ) -> Assignment:
        """See :meth:`Drift.assign_local`."""
        key = (workspace or self._client.workspace, test_id)
        d = None if refresh else self._tests.get(key)
        if d is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                d = None if refresh else self._tests.get(key)
                if d is None:
                    data = await self._client._call(
                        "GET", f"/api/v1/drift/ab_tests/{path_param(test_id)}",
                        query={"workspace": workspace}, workspace_param=True,
                    )
                    d = _definition(test_id, data)
                    self._tests[key] = d
        return _assignment(test_id, unit, d)

    def forget(self) -> None:
        """Drops the cached test definitions."""
        self._tests.clear()
