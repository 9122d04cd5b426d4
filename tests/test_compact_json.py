"""compact_json.dumps: json.dumps's compact output and errors, from an encoder made once."""

from __future__ import annotations

import json
import math

import pytest

from beamish.compact_json import ENCODER, dumps

DOCUMENTS = [
    ["1", None, "conversation:c1", "token", {"request_id": "r1", "delta": "héllo \"x\"\n"}],
    {"event": "llm_request", "stream": True, "latency_ms": 3, "ratio": 0.5, "error": None},
    [], {}, "a\u2028b", 10**30, [[{"deep": [1, 2.5, False]}]],
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_output_is_json_dumps_compact(document: object) -> None:
    expected = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert dumps(document) == ENCODER.encode(document) == expected
    assert json.loads(dumps(document)) == document


def test_what_json_cannot_carry_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"when": object()})
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps([math.nan])
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(RecursionError):
        dumps(cycle)
