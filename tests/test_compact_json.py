"""compact_json.dumps: json.dumps's compact output and errors, written by orjson."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import uuid

import pytest

from beamish.compact_json import ENCODER, dumps


@dataclasses.dataclass
class _Point:
    x: int
    y: int


class _Colour(enum.Enum):
    RED = "red"


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


def _stdlib(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("document", [
    [2**64, -(2**63) - 1], {1: "a", 2.5: "b", False: "c", None: "d"}, ["lone \ud800"],
    [[[[[[[[[[1]]]]]]]]]] * 2, [None, "null", {"k": None}], (1, [2, (3,)]),
])
def test_what_orjson_refuses_is_written_as_json_dumps_writes_it(document: object) -> None:
    """Huge ints, non-str keys, lone surrogates: the standard library's text, unchanged."""
    assert dumps(document) == _stdlib(document)


def test_nesting_beyond_orjson_s_limit_is_written_by_the_standard_library() -> None:
    """A document nested 300 deep (orjson stops at 254) is still written."""
    document: list[object] = []
    for _ in range(300):
        document = [document]
    assert dumps(document) == _stdlib(document)


class _Float(float):
    pass


@pytest.mark.parametrize("document", [
    [None, math.nan], ["1", None, "t", "e", {"x": math.inf}], {"a": None, "b": -math.inf},
    {"deep": [[{"x": (None, math.nan)}]]}, [None, _Float("nan")], math.nan,
])
def test_nan_and_infinities_are_refused_wherever_they_are(document: object) -> None:
    """orjson would write null; dumps raises ValueError, as json.dumps does."""
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(document)


def test_a_null_ref_does_not_hide_a_nan_in_the_payload() -> None:
    """A push's top-level None is counted; a NaN nested beside it is still found."""
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(["1", None, "t", "e", {"n": math.nan, "s": "null"}])
    assert dumps(["1", None, "t", "e", {"n": 1.5, "s": "null"}]) == (
        '["1",null,"t","e",{"n":1.5,"s":"null"}]')


@pytest.mark.parametrize("value", [
    datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), datetime.date(2024, 1, 2),
    datetime.time(12, 0), _Point(1, 2), {1, 2}, b"bytes",
])
def test_values_json_dumps_refuses_are_a_type_error(value: object) -> None:
    """Dates, dataclasses, sets, bytes: TypeError, as from json.dumps."""
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"v": value})


def test_uuids_and_plain_enums_are_written_as_their_values() -> None:
    """The documented widening: orjson writes a UUID and a plain Enum member."""
    assert dumps([uuid.UUID(int=1), _Colour.RED]) == (
        '["00000000-0000-0000-0000-000000000001","red"]')


def test_exponents_are_written_without_leading_zeros_and_read_back_equal() -> None:
    """1e-7 where json.dumps writes 1e-07: the same number to any JSON reader."""
    numbers = [1e-7, 1e16, 1.5e300, 0.1, -0.0]
    assert json.loads(dumps(numbers)) == numbers
    assert dumps([1e-7]) == "[1e-7]"
