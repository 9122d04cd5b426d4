"""``beamish.store.text``: a client's text with NUL is refused, a model's is stored with
U+FFFD in its place (sans-I/O: no store, no loop)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from beamish.store.models import NewLLMConfig, NewTemplateVersion, UsageEvent
from beamish.store.text import (
    NUL_PROBLEM,
    Replaced,
    ReplacedObject,
    Text,
    TextObject,
    refuse_nul_in_json,
    replace_nul,
    replace_nul_in_json,
)


class _Client(BaseModel):
    text: Text = "ok"
    data: TextObject = {}


class _Model(BaseModel):
    text: Replaced = ""
    data: ReplacedObject = {}


def test_a_client_s_text_with_nul_is_refused_saying_so() -> None:
    """A NUL anywhere in a ``Text`` field fails its validation with the rule's words."""
    with pytest.raises(ValidationError) as refused:
        _Client(text="before\x00after")
    assert refused.value.errors()[0]["loc"] == ("text",)
    assert "holds a NUL character (U+0000)" in str(refused.value)
    assert _Client(text="no nul, even \\x00 written out").text.endswith("\\x00 written out")


@pytest.mark.parametrize(("value", "where"), [
    ({"a": "x\x00"}, "a holds"),
    ({"a": [1, {"b": ["ok", "\x00"]}]}, "a[1].b[1] holds"),
    ({"a": {"k\x00": 1}}, "the key 'k\\x00' of a holds"),
    ({"k\x00": 1}, "the key 'k\\x00' holds"),
    ({"a": ("t", "\x00")}, "a[1] holds"),
])
def test_json_is_refused_for_a_nul_at_any_depth_in_a_key_or_a_string(
        value: dict[str, Any], where: str) -> None:
    """The message says where the NUL is, from the object's top."""
    with pytest.raises(ValueError, match="NUL character") as refused:
        refuse_nul_in_json(value)
    assert str(refused.value) == f"{where.removesuffix(' holds')} {NUL_PROBLEM}"
    with pytest.raises(ValidationError):
        _Client(data=value)


def test_json_without_nul_passes_as_it_is() -> None:
    """Numbers, nulls, nesting and the text ``\\u0000`` written out are no NUL."""
    value = {"a": [1, 2.5, None, True, {"b": "\\u0000"}], "c": {}}
    assert refuse_nul_in_json(value) is value
    assert _Client(data=value).data == value


def test_deep_json_is_walked_without_recursion() -> None:
    """A client's JSON nested far past Python's recursion limit is still checked."""
    deep: Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="NUL character"):
        refuse_nul_in_json({"v": deep})


def test_a_model_s_text_is_kept_with_u_fffd_for_each_nul() -> None:
    """Replacing keeps the rest of the text, and returns text without NUL as it is."""
    assert replace_nul("a\x00b\x00") == "a\ufffdb\ufffd"
    clean = "no nul here"
    assert replace_nul(clean) is clean
    assert replace_nul_in_json({"k\x00": ["x\x00", 1]}) == {"k\ufffd": ["x\ufffd", 1]}
    untouched = {"a": ["b"]}
    assert replace_nul_in_json(untouched) is untouched
    made = _Model(text="answer\x00", data={"warning": "\x00"})
    assert (made.text, made.data) == ("answer\ufffd", {"warning": "\ufffd"})


@pytest.mark.parametrize("build", [
    lambda: NewLLMConfig(provider="echo", model="echo\x00"),
    lambda: NewLLMConfig(provider="echo", model="echo-1", metadata={"note": ["\x00"]}),
    lambda: NewTemplateVersion(name="t", prompt="Hi\x00"),
    lambda: NewTemplateVersion(name="t", prompt="Hi", system="\x00"),
    lambda: NewTemplateVersion(name="t", prompt="Hi", variables_schema={"title": "\x00"}),
    lambda: UsageEvent(request_id="r\x00", user_id="ada", provider="echo", model="echo-1"),
])
def test_the_store_s_inputs_refuse_nul(build: Any) -> None:
    """What a caller hands the store (configs, template versions, usage) refuses NUL, so
    SQLite and PostgreSQL take and refuse the same values."""
    with pytest.raises(ValidationError, match=r"holds a NUL character \(U\+0000\)"):
        build()


def test_a_model_name_a_provider_reports_is_kept_with_u_fffd() -> None:
    """The model that served a request is the provider's word, not the client's: its usage
    is recorded with U+FFFD for a NUL rather than refused."""
    event = UsageEvent(request_id="r1", user_id="ada", provider="echo", model="echo\x00")
    assert event.model == "echo\ufffd"


def test_a_bounded_field_keeps_its_own_length_message() -> None:
    """``NO_NUL`` comes after a field's bounds, so an overlong name is still "at most 255
    characters" (pydantic words a bound after a validator as "items")."""
    with pytest.raises(ValidationError, match="at most 255 characters"):
        NewLLMConfig(provider="echo", model="m" * 256)
