"""The background batcher: flush by size, by time, on close and at exit; nothing dropped silently."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

import learnloop
from learnloop import NO_RETRY, QueueFull
from scripted import closed_port


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def pred(uid: str, i: int, **extra) -> dict:
    return dict(id=f"{uid}-{i}", plugin="drift", subject="m", kind="regression", value=float(i), **extra)


def test_flushes_by_size(writer, uid):
    b = writer.batcher(max_batch=3, flush_interval=60)
    for i in range(3):
        b.predict(**pred(uid, i))
    assert wait_for(lambda: b.inserted == 3), "three records (max_batch) are sent without waiting"
    assert b.sent_batches == 1
    b.predict(**pred(uid, 3))
    time.sleep(0.5)
    assert (b.inserted, b.pending()) == (3, 1), "one record waits for the interval"
    assert b.close(timeout=10)
    assert (b.inserted, b.pending(), b.sent_batches) == (4, 0, 2)


def test_flushes_by_time(writer, uid):
    b = writer.batcher(max_batch=1000, flush_interval=0.3)
    started = time.monotonic()
    b.predict(**pred(uid, 0))
    b.predict(**pred(uid, 1))
    assert wait_for(lambda: b.inserted == 2, 5)
    assert time.monotonic() - started >= 0.25
    assert b.sent_batches == 1
    b.close()


def test_close_and_with_block_flush_and_outcomes_follow_predictions(writer, uid):
    with writer.batcher(max_batch=1000, flush_interval=60) as b:
        for i in range(5):
            b.predict(**pred(uid, i))
            b.outcome(id=f"{uid}-{i}-out", plugin="drift", prediction_id=f"{uid}-{i}", value=float(i) + 0.5)
    assert (b.inserted, b.rejected, b.failed) == (10, [], [])
    assert writer.predict(**pred(uid, 4)).duplicate, "the records are stored"


def test_explicit_flush_waits_for_the_answer(writer, uid):
    b = writer.batcher(max_batch=1000, flush_interval=60)
    b.predict(**pred(uid, 0))
    assert b.flush(timeout=10) and b.inserted == 1
    b.close()
    with pytest.raises(learnloop.LearnloopError, match="closed"):
        b.predict(**pred(uid, 1))


def test_rejections_are_collected_and_passed_to_the_callback(writer, uid):
    seen = []
    with writer.batcher(on_rejected=seen.append) as b:
        b.predict(**pred(uid, 0))
        b.predict(**pred(uid, 1, confidence=7.0))
        b.outcome(id=f"{uid}-x", plugin="drift", prediction_id=f"{uid}-missing", value=1.0)
    assert b.inserted == 1
    assert [(r.type, r.id, r.field) for r in b.rejected] == [
        ("prediction", f"{uid}-1", "confidence"),
        ("outcome", f"{uid}-x", "prediction_id"),
    ]
    assert seen == b.rejected
    assert b.rejected[0].record["confidence"] == 7.0 and b.rejected[0].message


def test_undeliverable_batches_are_reported_with_their_records(uid):
    errors = []
    with learnloop.Client(closed_port(), retry=NO_RETRY) as ll:
        with ll.batcher(on_error=errors.append) as b:
            b.predict(**pred(uid, 0))
            b.predict(**pred(uid, 1))
    (failed,) = b.failed
    assert isinstance(failed.error, learnloop.TransportError)
    assert [r["id"] for r in failed.records] == [f"{uid}-0", f"{uid}-1"]
    assert errors == b.failed


def test_a_full_queue_blocks_then_raises_queue_full(uid):
    release = threading.Event()
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        import json

        items = json.loads(request.content)
        sent.extend(i["id"] for i in items)
        return httpx.Response(200, json={"inserted": len(items), "duplicates": 0, "rejected": 0, "results": [
            {"index": n, "id": i["id"], "status": "inserted"} for n, i in enumerate(items)]})

    with learnloop.Client("http://learnloop.test", transport=httpx.MockTransport(handler)) as ll:
        b = ll.batcher(max_batch=1, max_queue=2, block_timeout=0.3)
        b.predict(**pred(uid, 0))  # sent at once; the server holds it
        b.predict(**pred(uid, 1))  # waits in the queue: 2 records unanswered
        started = time.monotonic()
        with pytest.raises(QueueFull, match="2 records"):
            b.predict(**pred(uid, 2))
        assert time.monotonic() - started >= 0.28
        release.set()
        assert b.close(timeout=10)
    assert sent == [f"{uid}-0", f"{uid}-1"] and b.inserted == 2


def test_records_are_flushed_at_interpreter_exit(server, uid, tmp_path):
    script = tmp_path / "agent.py"
    script.write_text(textwrap.dedent(f"""
        import learnloop
        ll = learnloop.Client({server.url!r}, api_key={server.keys['writer']!r})
        b = ll.batcher(max_batch=1000, flush_interval=3600)
        for i in range(3):
            b.predict(id="{uid}-exit-" + str(i), plugin="drift", subject="m", kind="regression", value=1.0)
        # no close(): the atexit hook sends them
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    with learnloop.Client(server.url, api_key=server.keys["writer"]) as ll:
        for i in range(3):
            r = ll.predict(id=f"{uid}-exit-{i}", plugin="drift", subject="m", kind="regression", value=1.0)
            assert r.duplicate, "stored by the exiting process"


def test_batcher_arguments_are_checked(writer):
    for kwargs, word in [({"max_batch": 0}, "max_batch"), ({"flush_interval": 0}, "flush_interval"),
                         ({"max_queue": 0}, "max_queue"), ({"block_timeout": -1}, "block_timeout")]:
        with pytest.raises(ValueError, match=word):
            writer.batcher(**kwargs)
