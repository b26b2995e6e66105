"""Retries: 429/502/503/504 and connection errors, backoff with jitter, Retry-After."""

from __future__ import annotations

import time

import pytest

import learnloop
from learnloop import InvalidInput, RateLimited, RetryPolicy, ServerError, TransportError, Unavailable
from scripted import Scripted, closed_port, problem

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)
INSERTED = (201, {}, {"id": "rec-1", "status": "inserted"})
REC = dict(id="rec-1", plugin="cost", subject="ec2-1", kind="rightsizing", value=1.0)


def test_503_then_201_honours_retry_after():
    with Scripted([(503, {"Retry-After": "1"}, problem(503, "unavailable", "stopping")), INSERTED]) as s:
        with learnloop.Client(s.url, api_key="k", retry=FAST) as ll:
            r = ll.predict(**REC)
    assert r.inserted
    assert len(s.requests) == 2
    gap = s.requests[1]["time"] - s.requests[0]["time"]
    assert gap >= 0.95, f"Retry-After: 1 was not waited for ({gap:.3f} s)"
    assert s.requests[0]["body"] == s.requests[1]["body"], "the retry sends the same record"
    assert s.requests[0]["headers"]["Authorization"] == "Bearer k"


def test_429_without_retry_after_backs_off_exponentially():
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.2, multiplier=2.0, jitter=0.0)
    busy = (429, {}, problem(429, "rate-limited", "slow down"))
    with Scripted([busy, busy, INSERTED]) as s:
        with learnloop.Client(s.url, retry=policy) as ll:
            assert ll.predict(**REC).inserted
    t = [r["time"] for r in s.requests]
    assert len(t) == 3
    assert 0.18 <= t[1] - t[0] < 0.9 and 0.38 <= t[2] - t[1] < 1.5, [t[1] - t[0], t[2] - t[1]]


def test_jitter_stays_within_its_range():
    p = RetryPolicy(initial_backoff=1.0, multiplier=2.0, max_backoff=3.0, jitter=0.5)
    waits = [p.backoff(3) for _ in range(200)]
    assert all(1.5 <= w <= 3.0 for w in waits) and len(set(waits)) > 100


def test_other_4xx_are_never_retried():
    with Scripted([(422, {}, problem(422, "invalid-field", "bad", "value")), INSERTED]) as s:
        with learnloop.Client(s.url, retry=FAST) as ll:
            with pytest.raises(InvalidInput) as e:
                ll.predict(**REC)
    assert len(s.requests) == 1 and e.value.field == "value"


def test_gives_up_after_max_attempts_with_the_last_error():
    with Scripted([(503, {}, problem(503, "unavailable", "down"))]) as s:
        with learnloop.Client(s.url, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as ll:
            with pytest.raises(Unavailable) as e:
                ll.predict(**REC)
    assert len(s.requests) == 3 and e.value.status == 503 and isinstance(e.value, ServerError)


def test_a_retry_after_longer_than_allowed_is_raised_at_once():
    with Scripted([(429, {"Retry-After": "120"}, problem(429, "rate-limited", "later")), INSERTED]) as s:
        with learnloop.Client(s.url, retry=RetryPolicy(max_retry_after=5)) as ll:
            with pytest.raises(RateLimited) as e:
                ll.predict(**REC)
    assert len(s.requests) == 1 and e.value.retry_after == 120


def test_connection_errors_are_retried_then_raised():
    started = time.monotonic()
    with learnloop.Client(closed_port(), retry=RetryPolicy(max_attempts=3, initial_backoff=0.05, jitter=0)) as ll:
        with pytest.raises(TransportError) as e:
            ll.predict(**REC)
    assert e.value.status is None and "3 attempt" in e.value.detail
    assert time.monotonic() - started >= 0.14  # 0.05 + 0.1 of backoff


def test_a_non_idempotent_post_is_not_retried_on_502_but_is_on_503():
    # The scripted answer is not a whole TrustRouteAnswer, so the untyped
    # `request` sends it: the retry rule is the same for every call.
    ok = (200, {}, {"pick": "a1"})
    body = {"recommendation_type": "security", "candidates": ["a1", "a2"]}
    with Scripted([(502, {}, problem(502, "bad-gateway", "proxy")), ok]) as s:
        with learnloop.Client(s.url, retry=FAST) as ll:
            with pytest.raises(ServerError):
                ll.request("POST", "/api/v1/trust/route", body=body)
    assert len(s.requests) == 1
    with Scripted([(503, {}, problem(503, "unavailable", "busy")), ok]) as s:
        with learnloop.Client(s.url, retry=FAST) as ll:
            assert ll.request("POST", "/api/v1/trust/route", body=body)["pick"] == "a1"
    assert len(s.requests) == 2
    with Scripted([(502, {}, problem(502, "bad-gateway", "proxy")), INSERTED]) as s:
        with learnloop.Client(s.url, retry=FAST) as ll:
            assert ll.predict(**REC).inserted, "ingest is idempotent: retried on 502 too"
    assert len(s.requests) == 2


@pytest.mark.anyio
async def test_async_client_retries_too():
    with Scripted([(503, {"Retry-After": "0.3"}, problem(503, "unavailable", "x")), INSERTED]) as s:
        async with learnloop.AsyncClient(s.url, retry=FAST) as ll:
            r = await ll.predict(**REC)
    assert r.inserted and len(s.requests) == 2
    assert s.requests[1]["time"] - s.requests[0]["time"] >= 0.28
