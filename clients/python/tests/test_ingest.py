"""Records: one at a time, batches, duplicates, conflicts, invalid fields."""

from __future__ import annotations

import datetime as dt

import pytest

import learnloop
from learnloop import BatchResult, Conflict, InvalidInput, PayloadTooLarge, RecordResult


def test_predict_and_outcome_insert_then_duplicate(writer, uid):
    p = writer.predict(id=f"{uid}-17", plugin="cost", subject="ec2-17", kind="rightsizing",
                       value=420.5, payload={"region": "eu-west-1"})
    assert isinstance(p, RecordResult)
    assert (p.id, p.status, p.inserted) == (f"{uid}-17", "inserted", True)
    o = writer.outcome(id=f"{uid}-17-exec", plugin="cost", prediction_id=f"{uid}-17", value=371.2, success=True)
    assert (o.status, o.inserted) == ("inserted", True)
    again = writer.predict(id=f"{uid}-17", plugin="cost", subject="ec2-17", kind="rightsizing",
                           value=420.5, payload={"region": "eu-west-1"})
    assert (again.status, again.duplicate) == ("duplicate", True)


def test_event_time_is_sent_as_rfc3339(writer, uid):
    when = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone.utc)
    r = writer.predict(id=f"{uid}-t", plugin="drift", subject="m", kind="regression", value=1.0, event_time=when)
    assert r.inserted
    # Another event time under the same id is a conflict: the time was stored as sent.
    with pytest.raises(Conflict):
        writer.predict(id=f"{uid}-t", plugin="drift", subject="m", kind="regression", value=1.0,
                       event_time=when + dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="event_time.*time zone"):
        writer.predict(id=f"{uid}-n", plugin="drift", subject="m", kind="regression",
                       event_time=dt.datetime(2026, 1, 5, 10, 0))


def test_same_id_other_content_is_a_conflict_naming_the_field(writer, uid):
    writer.predict(id=f"{uid}-c", plugin="cost", subject="ec2-1", kind="rightsizing", value=10.0)
    with pytest.raises(Conflict) as e:
        writer.predict(id=f"{uid}-c", plugin="cost", subject="ec2-1", kind="rightsizing", value=11.0)
    err = e.value
    assert isinstance(err, learnloop.LearnloopError)
    assert err.status == 409
    assert err.field == "id"
    assert err.type and err.type.endswith("/conflict")
    assert err.title and err.detail


def test_invalid_field_is_invalid_input_naming_it(writer, uid):
    with pytest.raises(InvalidInput) as e:
        writer.predict(id=f"{uid}-i", plugin="cost", subject="ec2-1", kind="rightsizing", confidence=1.5)
    assert (e.value.status, e.value.field) == (422, "confidence")
    with pytest.raises(InvalidInput) as e:
        writer.outcome(id=f"{uid}-o", plugin="cost", prediction_id=f"{uid}-never-sent", value=1.0)
    assert (e.value.status, e.value.field) == (422, "prediction_id")
    with pytest.raises(InvalidInput) as e:
        writer.predict(id="bad id with spaces", plugin="cost", subject="s", kind="k")
    assert e.value.field == "id"


def test_numbers_json_cannot_carry_are_refused_before_sending(writer, uid):
    with pytest.raises(ValueError, match=r"record\.value: nan is not a finite number"):
        writer.predict(id=f"{uid}-nan", plugin="drift", subject="m", kind="regression", value=float("nan"))


def test_batch_answers_each_record_in_the_order_given(writer, uid):
    records = [
        {"type": "outcome", "id": f"{uid}-a-out", "plugin": "drift", "prediction_id": f"{uid}-a", "value": 2.0},
        {"type": "prediction", "id": f"{uid}-a", "plugin": "drift", "subject": "m", "kind": "regression", "value": 1.5},
        {"type": "prediction", "id": f"{uid}-b", "plugin": "drift", "subject": "m", "kind": "regression",
         "confidence": 3},
        {"type": "prediction", "id": f"{uid}-a", "plugin": "drift", "subject": "m", "kind": "regression", "value": 1.5},
        learnloop.prediction_record(id=f"{uid}-c", plugin="drift", subject="m", kind="regression", value=0.5),
    ]
    r = writer.ingest(records)
    assert isinstance(r, BatchResult)
    assert [x.status for x in r.results] == ["inserted", "inserted", "rejected", "duplicate", "inserted"]
    assert [x.index for x in r.results] == [0, 1, 2, 3, 4]
    assert [x.id for x in r.results] == [rec["id"] for rec in records]
    assert (r.inserted, r.duplicates, r.rejected) == (3, 1, 1)
    (bad,) = r.rejections
    assert (bad.index, bad.field) == (2, "confidence") and bad.message


def test_batches_are_split_at_max_batch(server, uid):
    with learnloop.Client(server.url, api_key=server.keys["writer"], max_batch=2) as ll:
        r = ll.ingest(
            [{"id": f"{uid}-{i}", "plugin": "drift", "subject": "m", "kind": "regression", "value": i}
             for i in range(5)],
            type="prediction",
        )
    assert r.inserted == 5 and [x.index for x in r.results] == list(range(5))


def test_a_batch_over_the_servers_limit_is_payload_too_large(server, uid):
    with learnloop.Client(server.url, api_key=server.keys["writer"], max_batch=5000) as ll:
        with pytest.raises(PayloadTooLarge) as e:
            ll.ingest([{"id": f"{uid}-{i}", "plugin": "drift", "subject": "m", "kind": "r"} for i in range(1001)],
                      type="prediction")
    assert e.value.status == 413 and "max_batch" in e.value.detail


def test_records_must_say_what_they_are(writer):
    with pytest.raises(ValueError, match=r"records\[0\]\.type"):
        writer.ingest([{"id": "x", "plugin": "drift"}])
    with pytest.raises(ValueError, match="empty"):
        writer.ingest([])
