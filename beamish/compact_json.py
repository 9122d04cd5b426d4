"""Compact JSON text for the hot paths: Phoenix frames, request log lines, SSE events.

``dumps(document)`` is ``json.dumps(document, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)``: no spaces, non-ASCII as itself (UTF-8 on the wire), no NaN or Infinity.
Its errors are ``TypeError`` for a value JSON cannot carry, ``ValueError`` for NaN or an
infinity, and ``RecursionError`` for a cycle (there are no circular-reference markers).

It writes with orjson, several times faster than ``json.dumps`` on a chat frame, and hands
whatever orjson refuses to the standard library, which then decides (writes it, or raises
the error above). orjson refuses integers beyond 64 bits, keys that are not strings, lone
surrogates, nesting deeper than 254 and every value it has no rule for; ``datetime``,
``date``, ``time`` and dataclasses too (they are passed through to the standard library,
which refuses them, as ``json.dumps`` does). So the text is ``json.dumps``'s, but for:

* floats written in exponent form: ``1e-7`` where ``json.dumps`` writes ``1e-07``; the same
  number to any JSON reader;
* a ``uuid.UUID``, written as its string, and a plain ``enum.Enum`` member, written as its
  value, both of which ``json.dumps`` refuses.

orjson writes NaN and the infinities as ``null``; ``dumps`` keeps refusing them: when
orjson's text holds a ``null`` that is not a ``None`` of the top-level list (a Phoenix
push's null ref is one), the document is searched for a float that is not finite, and one
found is handed to the standard library, which raises ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any, Final, NoReturn

import orjson

ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""The standard library's encoder with ``dumps``'s options (and circular-reference checks)."""

# What orjson refuses is written by this one: ENCODER's options, no circular-reference
# markers (a cycle is a RecursionError, as documented).
_STDLIB: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                  check_circular=False)
_ORJSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_SCALARS: Final = frozenset((str, int, bool, type(None)))  # skipped without a call


def _refuse(value: object) -> NoReturn:
    """orjson's ``default``: what it cannot write goes to the standard library."""
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _holds_non_finite(document: object) -> bool:
    """Whether a float in ``document`` is NaN or an infinity (``x - x`` is NaN for those)."""
    kind = type(document)
    values: Any
    # Exact types first: the common case, and much cheaper than isinstance.
    if kind is list or kind is tuple:
        values = document
    elif kind is dict:
        values = document.values()  # type: ignore[attr-defined]
    elif isinstance(document, float):
        return document - document != 0.0
    elif isinstance(document, dict):
        values = document.values()
    elif isinstance(document, list | tuple):
        values = document
    else:
        return False
    # A loop, not any() over a generator: a generator costs more than this whole search.
    for value in values:  # noqa: SIM110
        if type(value) not in _SCALARS and _holds_non_finite(value):
            return True
    return False


def dumps(document: Any) -> str:
    """``document`` as compact JSON text (see the module docs).

    Raises:
        TypeError: a value JSON cannot carry.
        ValueError: NaN or an infinity.
        RecursionError: a cycle, or nesting too deep.
    """
    try:
        text = orjson.dumps(document, _refuse, _ORJSON_OPTIONS)
    except TypeError:
        return _STDLIB.encode(document)
    if b"null" in text and not _nulls_are_nones(text, document) and _holds_non_finite(document):
        return _STDLIB.encode(document)  # raises ValueError, as json.dumps does
    return text.decode()


def _nulls_are_nones(text: bytes, document: object) -> bool:
    """Whether every null of ``text`` is a None of the list ``document`` itself: then no
    float was written as null, without a search (a Phoenix push, whose ref is null)."""
    # Each null is a None, a non-finite float, or text within a string; so as many Nones
    # in the list alone as nulls leaves no room for a non-finite float anywhere.
    return type(document) is list and text.count(b"null") <= document.count(None)


__all__ = ["ENCODER", "dumps"]
