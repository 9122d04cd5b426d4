"""Text every backend can store: nothing holding NUL (U+0000).

PostgreSQL's ``text`` and ``jsonb`` columns cannot hold the NUL character (asyncpg raises, and
in a group commit the whole batch fails with it, other users' writes included); SQLite's can.
So that a value behaves the same on both backends, beamish keeps NUL out of the store in two
ways, by where the text comes from:

* **A client's input is refused where it comes in.** ``Text`` is a ``str`` that refuses NUL
  (``NO_NUL`` the same check after a field's bounds), ``TextObject`` a JSON object whose
  keys and strings, at any depth, do: a field of either
  fails validation as the field's other faults do (an HTTP 422, a channel's
  ``bad_request``, a ``ValidationError`` in Python), saying it "holds a NUL character
  (U+0000)". What the client sent is never changed behind its back.
* **Text a model (or a template's render) made is stored with each NUL replaced** by U+FFFD,
  the replacement character (``replace_nul``, ``Replaced``, ``ReplacedObject``): nobody can
  resend an answer, the rest of it stays readable, and a model that emits NUL never makes a
  write fail.

The checks are a ``"\\x00" in text`` each (a ``memchr``), cheap enough for every message.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar, cast

from pydantic import AfterValidator

NUL: Final = "\x00"
REPLACEMENT: Final = "\ufffd"
NUL_PROBLEM: Final = ("holds a NUL character (U+0000), which beamish cannot store; "
                      "remove it")

_J = TypeVar("_J")


def refuse_nul(text: str) -> str:
    """``text`` as it is.

    Raises:
        ValueError: ``text`` holds a NUL character.
    """
    if NUL in text:
        raise ValueError(NUL_PROBLEM)
    return text


def refuse_nul_in_json(value: _J) -> _J:
    """``value`` (a JSON value: dicts, lists, strings, numbers) as it is.

    Raises:
        ValueError: a key or a string in it, at any depth, holds a NUL character; the
            message says where (``variables.a[2]``-style, from the value's top).
    """
    where = _nul_in_json(value)
    if where is not None:
        raise ValueError(f"{where or 'the value'} {NUL_PROBLEM}")
    return value


def replace_nul(text: str) -> str:
    """``text`` with each NUL character replaced by U+FFFD."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def replace_nul_in_json(value: _J) -> _J:
    """``value`` (a JSON value) with each NUL in its keys and strings replaced by U+FFFD;
    ``value`` itself when it holds none."""
    if _nul_in_json(value) is None:
        return value
    return cast(_J, _replaced(value))


NO_NUL: Final = AfterValidator(refuse_nul)
"""The check of ``Text``, to write after a field's own constraints:
``Annotated[str, Field(max_length=64), NO_NUL]``. (Pydantic applies a length bound that
comes after a validator as a generic one — "at most 64 items" — not a string's.)"""

REPLACE_NUL: Final = AfterValidator(replace_nul)
"""The replacement of ``Replaced``, to write after a field's own constraints."""

Text = Annotated[str, NO_NUL]
"""A client's text: a ``str`` holding no NUL character (``refuse_nul``). It takes no
constraints after it (see ``NO_NUL``)."""

TextObject = Annotated[dict[str, Any], AfterValidator(refuse_nul_in_json)]
"""A client's JSON object: no NUL in its keys or strings, at any depth."""

Replaced = Annotated[str, REPLACE_NUL]
"""Text a model or a render made: stored with each NUL replaced by U+FFFD."""

ReplacedObject = Annotated[dict[str, Any], AfterValidator(replace_nul_in_json)]
"""A JSON object beamish made from such text (a provenance, say): the same replacement."""


def _nul_in_json(value: object) -> str | None:
    """Where in ``value`` the first NUL is (a path; ``""`` for ``value`` itself), or None.

    A walk with a stack, not recursion: a client's deeply nested JSON cannot exhaust
    Python's recursion limit here."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and NUL in key:
                    return f"the key {key[:64]!r}" + (f" of {path}" if path else "")
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def _replaced(value: object) -> object:
    # Only called on a value known to hold a NUL; nesting as deep as a model's JSON answer.
    if isinstance(value, str):
        return replace_nul(value)
    if isinstance(value, dict):
        return {replace_nul(k) if isinstance(k, str) else k: _replaced(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replaced(v) for v in value]
    return value


__all__ = ["NO_NUL", "NUL", "NUL_PROBLEM", "REPLACEMENT", "REPLACE_NUL", "Replaced",
           "ReplacedObject", "Text", "TextObject", "refuse_nul", "refuse_nul_in_json",
           "replace_nul", "replace_nul_in_json"]
