"""learnloop: record what your AI predicts or recommends, report what happened, ask what was learned.

>>> from learnloop import Client
>>> ll = Client("http://127.0.0.1:8080", api_key="...")          # doctest: +SKIP
>>> ll.predict(id="rec-17", plugin="cost", subject="ec2-17", kind="rightsizing", value=420.5)  # doctest: +SKIP

See the package README for the whole tour.
"""

from __future__ import annotations

from . import abtest, models
from ._runtime import NO_RETRY, RetryPolicy, __version__
from .batcher import AsyncBatcher, Batcher, FailedBatch
from .client import AsyncClient, Client
from .drift import Assignment
from .errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LearnloopError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    ResponseValidationError,
    ServerError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from .records import outcome_record, prediction_record
from .results import BatchResult, ItemResult, RecordResult, Rejection

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "RetryPolicy",
    "NO_RETRY",
    "Batcher",
    "AsyncBatcher",
    "FailedBatch",
    "Rejection",
    "RecordResult",
    "BatchResult",
    "ItemResult",
    "Assignment",
    "prediction_record",
    "outcome_record",
    "abtest",
    "models",
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
]
