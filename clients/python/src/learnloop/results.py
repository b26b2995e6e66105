"""What ingest answers, as typed results.

These follow the ingest contract (README, "HTTP API"): one record answers
201 ``{"id", "status": "inserted"}`` or 200 ``{"id", "status": "duplicate"}``;
a batch answers 200 with counts and one result per item, in order. The
client's tests check them against a real server.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict

__all__ = ["RecordResult", "ItemResult", "BatchResult", "Rejection"]


class RecordResult(BaseModel):
    """The answer to one record: stored now (``inserted``) or already stored (``duplicate``)."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str] = None
    status: Literal["inserted", "duplicate"]

    @property
    def inserted(self) -> bool:
        return self.status == "inserted"

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"


class ItemResult(BaseModel):
    """One item of a batch: ``index`` is its position in what you sent."""

    model_config = ConfigDict(extra="allow")

    index: int
    id: Optional[str] = None
    status: Literal["inserted", "duplicate", "rejected"]
    field: Optional[str] = None
    message: Optional[str] = None


class BatchResult(BaseModel):
    """The answer to a batch: counts and one :class:`ItemResult` per record."""

    model_config = ConfigDict(extra="allow")

    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    results: List[ItemResult] = []

    @property
    def rejections(self) -> List[ItemResult]:
        """The rejected items (each names its ``field`` and says why in ``message``)."""
        return [r for r in self.results if r.status == "rejected"]


class Rejection(BaseModel):
    """A record the server refused, as the batcher reports it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["prediction", "outcome"]
    id: Optional[str] = None
    field: Optional[str] = None
    message: str
    record: Dict[str, Any]
