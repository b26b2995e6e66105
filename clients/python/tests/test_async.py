"""The asyncio client: the same calls, awaited."""

from __future__ import annotations

import asyncio

import pytest

import learnloop
from learnloop import Conflict, InvalidInput

pytestmark = pytest.mark.anyio


async def test_predict_outcome_ingest_and_errors(server, uid):
    async with learnloop.AsyncClient(server.url, api_key=server.keys["writer"]) as ll:
        p = await ll.predict(id=f"{uid}-p", plugin="drift", subject="m", kind="regression", value=2.0)
        o = await ll.outcome(id=f"{uid}-o", plugin="drift", prediction_id=f"{uid}-p", value=2.5)
        assert (p.status, o.status) == ("inserted", "inserted")
        assert (await ll.predict(id=f"{uid}-p", plugin="drift", subject="m", kind="regression", value=2.0)).duplicate
        with pytest.raises(Conflict) as e:
            await ll.predict(id=f"{uid}-p", plugin="drift", subject="m", kind="regression", value=3.0)
        assert e.value.field == "id"
        with pytest.raises(InvalidInput):
            await ll.predict(id=f"{uid}-q", plugin="drift", subject="m", kind="regression", confidence=2)
        r = await ll.ingest([learnloop.prediction_record(id=f"{uid}-{i}", plugin="drift", subject="m",
                                                          kind="regression", value=i) for i in range(4)])
        assert r.inserted == 4


async def test_concurrent_calls_and_plugin_routes(server, uid):
    async with learnloop.AsyncClient(server.url, api_key=server.keys["writer"]) as ll:
        results = await asyncio.gather(*[
            ll.predict(id=f"{uid}-{i}", plugin="trust", subject=f"agent-{i % 2}", kind="security", confidence=0.7)
            for i in range(20)
        ])
        assert all(r.inserted for r in results)
        decision = await ll.trust.route(recommendation_type="security", candidates=["agent-0", "agent-1"],
                                        strategy="greedy")
        assert decision["pick"] in ("agent-0", "agent-1")


async def test_async_batcher_flushes_and_reports(server, uid):
    seen = []
    async with learnloop.AsyncClient(server.url, api_key=server.keys["writer"]) as ll:
        b = ll.batcher(max_batch=2, flush_interval=0.2, on_rejected=seen.append)
        await b.predict(id=f"{uid}-0", plugin="drift", subject="m", kind="regression", value=1.0)
        await b.predict(id=f"{uid}-1", plugin="drift", subject="m", kind="regression", value=1.0)
        await b.predict(id=f"{uid}-2", plugin="drift", subject="m", kind="regression", confidence=9)
        for _ in range(100):
            if b.inserted == 2:
                break
            await asyncio.sleep(0.02)
        assert b.inserted == 2, "max_batch records go out without waiting"
        await b.flush()
        assert [r.field for r in b.rejected] == ["confidence"] and seen == b.rejected
        await b.predict(id=f"{uid}-3", plugin="drift", subject="m", kind="regression", value=1.0)
    # Leaving the client closes its batchers: the last record was sent.
    assert b.inserted == 3 and b.pending() == 0
