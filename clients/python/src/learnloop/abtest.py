"""A/B assignment computed locally, with the same hash as the server.

The drift plugin assigns a unit (a user, a request, ...) to an arm of an A/B
test deterministically (``plugins/drift/src/abtest.rs``): FNV-1a 64 over the
UTF-8 bytes of the test id, one 0 byte and the unit id; finished with
MurmurHash3's ``fmix64``; its top 53 bits divided by 2**53 give a fraction
``u`` in [0, 1); the arm is the first whose cumulative split exceeds ``u``,
else the last. Computing it here saves a round trip per request and gives
the same answer as ``GET /api/v1/drift/ab_tests/{test}/assign?unit=``.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["unit_fraction", "assign"]

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def unit_fraction(test_id: str, unit: str) -> float:
    """The unit's fraction u in [0, 1) for the test (the server's ``unit_fraction``)."""
    if not isinstance(test_id, str) or not isinstance(unit, str):
        raise TypeError("test_id and unit must be strings")
    h = _FNV_OFFSET
    for b in test_id.encode("utf-8") + b"\x00" + unit.encode("utf-8"):
        h ^= b
        h = (h * _FNV_PRIME) & _MASK
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    h ^= h >> 33
    return (h >> 11) / float(1 << 53)


def assign(test_id: str, unit: str, split: Sequence[float]) -> int:
    """The index of the unit's arm for a test with this traffic split.

    ``split`` is the test's share per arm, as the server stores it (``GET
    /api/v1/drift/ab_tests/{test}`` answers it). The cumulative sum is
    computed in the same order with the same floating-point arithmetic as
    the server, so edge cases agree too.
    """
    shares = list(split)
    if not shares:
        raise ValueError("split: needs at least one arm")
    for i, s in enumerate(shares):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
            raise ValueError(f"split[{i}]: expected a finite number >= 0, got {s!r}")
    u = unit_fraction(test_id, unit)
    acc = 0.0
    for i, s in enumerate(shares):
        acc += float(s)
        if u < acc:
            return i
    return len(shares) - 1
