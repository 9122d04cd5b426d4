"""Compact JSON text for the hot paths: Phoenix frames, request log lines, SSE events.

``dumps(document)`` is ``json.dumps(document, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)``: no spaces, non-ASCII as itself (UTF-8 on the wire), no NaN or Infinity.
It is faster for small documents: ``json.dumps`` builds its C encoder anew for every call,
which cost a third of encoding a chat frame; this one is made once. Same output and errors
(``TypeError`` for a value JSON cannot carry, ``ValueError`` for NaN), except that without
circular-reference markers a cycle fails as a ``RecursionError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, NoReturn

ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""The pure-Python equivalent of ``dumps`` (and what it falls back to without the C one)."""


def _not_json(value: object) -> NoReturn:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_make_c_encoder: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None)
# The arguments ENCODER.iterencode passes for a one-shot encoding, but markers (None).
_C_ENCODE: Final = None if _make_c_encoder is None else _make_c_encoder(
    None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)


def dumps(document: Any) -> str:
    """``document`` as compact JSON text (see the module docs).

    Raises:
        TypeError: a value JSON cannot carry.
        ValueError: NaN or an infinity.
        RecursionError: a cycle, or nesting too deep.
    """
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(document, 0))
    return ENCODER.encode(document)


__all__ = ["ENCODER", "dumps"]
