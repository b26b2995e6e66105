"""Local A/B assignment agrees with the server's GET /ab_tests/{test}/assign."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import learnloop
from learnloop import abtest

SPLITS = {
    "halves": ["v1", "v2"], "tenths": ["a", "b", "c"], "skewed": ["old", "new"],
}
DEFINITIONS = [
    ("halves", ["v1", "v2"], [0.5, 0.5]),
    ("tenths", ["a", "b", "c"], [0.1, 0.2, 0.7]),
    ("skewed", ["old", "new"], [0.9, 0.1]),
    ("thirds", ["x", "y", "z"], [1 / 3, 1 / 3, 1 / 3]),
]


def units(n: int):
    out = [f"user-{i}" for i in range(n - 40)]
    out += [f"ünïcode-{i}-☃" for i in range(20)] + [f"{i:x}" * 3 for i in range(20)]
    return out


def test_the_readme_example():
    # plugins/drift/README.md: demand-v1-v2 / user-42 -> arm 1 (v2), fraction 0.7314.
    assert round(abtest.unit_fraction("demand-v1-v2", "user-42"), 4) == 0.7314
    assert abtest.assign("demand-v1-v2", "user-42", [0.5, 0.5]) == 1


def test_pure_function_edges():
    assert abtest.assign("t", "u", [1.0]) == 0
    assert abtest.assign("t", "u", [0.0, 0.0]) == 1, "no share exceeds u: the last arm"
    for bad in ([], [float("nan")], [-0.1, 1.1], ["0.5"]):
        with pytest.raises(ValueError):
            abtest.assign("t", "u", bad)
    fractions = [abtest.unit_fraction("t", f"u{i}") for i in range(5000)]
    assert all(0 <= f < 1 for f in fractions)
    assert abs(sum(fractions) / len(fractions) - 0.5) < 0.02


@pytest.mark.anyio
async def test_local_assignment_matches_the_server(server, uid):
    async with learnloop.AsyncClient(server.url, api_key=server.keys["writer"], timeout=60) as ll:
        for name, versions, split in DEFINITIONS:
            await ll.request("POST", "/api/v1/drift/ab_tests",
                             body={"id": f"{uid}-{name}", "model": f"{uid}-model", "versions": versions,
                                   "split": split})
        sem = asyncio.Semaphore(16)

        async def server_arm(test: str, unit: str):
            async with sem:
                return await ll.request("GET", f"/api/v1/drift/ab_tests/{test}/assign", query={"unit": unit})

        checked = 0
        for name, versions, split in DEFINITIONS:
            test = f"{uid}-{name}"
            ids = units(2000 if name in ("halves", "tenths") else 600)
            answers = await asyncio.gather(*[server_arm(test, u) for u in ids])
            arms = set()
            for unit, answer in zip(ids, answers):
                local = await ll.drift.assign_local(test, unit)
                assert (local.arm, local.version, local.fraction) == (
                    answer["arm"], answer["version"], answer["fraction"]), (test, unit)
                assert local.split == answer["split"]
                assert abtest.assign(test, unit, answer["split"]) == answer["arm"]
                arms.add(local.arm)
                checked += 1
            assert arms == set(range(len(versions))), f"{test}: every arm is reached"
        assert checked >= 2000 * 2 + 600 * 2


def test_assign_local_fetches_the_definition_once(server, uid):
    calls = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request):
            calls.append((request.method, request.url.path))
            return super().handle_request(request)

    with learnloop.Client(server.url, api_key=server.keys["writer"], transport=Counting()) as ll:
        ll.request("POST", "/api/v1/drift/ab_tests",
                   body={"id": f"{uid}-once", "model": "m", "versions": ["v1", "v2"], "split": [0.3, 0.7]})
        got = [ll.drift.assign_local(f"{uid}-once", f"user-{i}") for i in range(50)]
        assert {a.version for a in got} == {"v1", "v2"}
        gets = [c for c in calls if c[0] == "GET"]
        assert gets == [("GET", f"/api/v1/drift/ab_tests/{uid}-once")]
        ll.drift.assign_local(f"{uid}-once", "user-1", refresh=True)
        assert len([c for c in calls if c[0] == "GET"]) == 2
