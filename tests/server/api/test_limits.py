"""``BodyLimits``, sans-I/O: which bound a body breaks, and where."""

from __future__ import annotations

from beamish.server.api.limits import BodyLimits, Problem, problem_of_json

LIMITS = BodyLimits(max_body_bytes=1024, max_json_depth=3, max_string_chars=5,
                    max_array_items=2)


def _problem(document: object) -> Problem:
    found = LIMITS.problem(document)
    assert found is not None
    return found


def test_a_body_within_every_bound_has_no_problem() -> None:
    """Depth, strings and arrays at their limits pass."""
    assert LIMITS.problem({"a": [{"b": "12345"}, 1]}) is None
    assert LIMITS.too_large(1024) is None


def test_each_bound_names_the_field_that_breaks_it() -> None:
    """The problem's ``loc`` is the path of the first value over a bound."""
    assert LIMITS.problem({"a": {"b": {"c": {"d": 1}}}}) == Problem(
        ("body", "a", "b", "c", "d"), "nested deeper than 3 levels (server.max_json_depth)",
        "too_deep")
    assert _problem({"m": [{"c": "123456"}]}).loc == (
        "body", "m", 0, "c")
    assert _problem({"m": [1, 2, 3]}).type == "too_long"


def test_a_lone_surrogate_in_a_value_or_a_key_is_a_problem() -> None:
    """Valid JSON, not Unicode: refused wherever it is; a surrogate pair's character is fine."""
    assert _problem({"a": "x\ud800"}).type == "invalid_unicode"
    assert _problem({"\udfff": 1}).loc == ("body",)
    assert LIMITS.problem({"a": "\U0001f600"}) is None


def test_nesting_too_deep_to_parse_is_a_problem_not_a_crash() -> None:
    """The parser's RecursionError becomes the depth problem; unparsable JSON is FastAPI's."""
    deep = problem_of_json(b"[" * 100_000 + b"]" * 100_000, LIMITS)
    assert deep is not None
    assert deep.type == "too_deep"
    assert problem_of_json(b'{"a": ', LIMITS) is None
    assert LIMITS.too_large(1025) is not None
