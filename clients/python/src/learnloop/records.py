"""Building prediction and outcome records (the JSON objects ingest takes).

The fields and their rules are the README's "Records" table; the server
validates them and names the field at fault (422 :class:`~learnloop.InvalidInput`).
Fields left as ``None`` are left out of the record.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Mapping, Optional, Union

import pydantic

from ._runtime import to_json

__all__ = ["prediction_record", "outcome_record", "as_record"]

Time = Union[_dt.datetime, str]


def _clean(fields: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def prediction_record(
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
) -> Dict[str, Any]:
    """A prediction (something predicted or recommended) as a record."""
    return to_json(
        _clean(
            {
                "type": "prediction",
                "id": id,
                "workspace": workspace,
                "plugin": plugin,
                "subject": subject,
                "kind": kind,
                "value": value,
                "label": label,
                "confidence": confidence,
                "features": features,
                "payload": payload,
                "event_time": event_time,
            }
        ),
        "record",
    )


def outcome_record(
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
) -> Dict[str, Any]:
    """An outcome (what happened to the prediction ``prediction_id``) as a record.

    ``plugin`` is required: it must be the prediction's plugin (the server
    checks; it does not infer it).
    """
    return to_json(
        _clean(
            {
                "type": "outcome",
                "id": id,
                "workspace": workspace,
                "plugin": plugin,
                "prediction_id": prediction_id,
                "value": value,
                "label": label,
                "success": success,
                "quality": quality,
                "feedback": feedback,
                "payload": payload,
                "event_time": event_time,
            }
        ),
        "record",
    )


def as_record(record: Any, where: str, default_type: Optional[str] = None) -> Dict[str, Any]:
    """A record given as a mapping or a pydantic model, with its ``type`` checked."""
    if isinstance(record, pydantic.BaseModel) or isinstance(record, Mapping):
        data = to_json(record, where)
    else:
        raise TypeError(f"{where}: expected a record (a mapping or a pydantic model), got {type(record).__name__}")
    kind = data.get("type", default_type)
    if kind not in ("prediction", "outcome"):
        raise ValueError(
            f"{where}.type: expected \"prediction\" or \"outcome\", got {kind!r} "
            "(name it in the record or pass type=)"
        )
    data["type"] = kind
    return data
