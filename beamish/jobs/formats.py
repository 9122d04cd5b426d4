"""Answers into stored outputs, by format, without I/O.

* ``text`` — stored as is.
* ``json`` — parsed (a single fenced ```` ```json ```` block around it is accepted, as
  models often add one) and, when the job gives a JSON Schema, validated; stored as compact
  JSON. An answer that does not parse or fit is a ``FormatError``: retryable, with the
  reason, since another answer may fit.
* ``markdown`` — rendered with markdown-it (CommonMark, raw HTML kept out) and the HTML
  sanitized: what a page may show as is.
* ``html`` — sanitized with nh3 (the Rust ammonia binding): no scripts or styles, no event
  handlers, no ``javascript:`` or other non-web URLs; links get ``rel="noopener
  noreferrer"``.

Schemas are checked when the job is enqueued (``check_schema``); ``$ref`` to anything but
the schema itself is refused, so validating never fetches from the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import nh3
from markdown_it import MarkdownIt

from beamish.jobs.errors import InvalidJobError, RetryableAttemptError
from beamish.store.job_models import OutputFormat

MAX_SCHEMA_ERRORS = 5
"""Schema violations named in a ``FormatError`` at most."""

_FENCE = re.compile(r"\A\s*```(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
_URL_SCHEMES = frozenset({"http", "https", "mailto"})


class FormatError(RetryableAttemptError):
    """The answer is not in the format the job asked for; the message says why."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """An answer as stored: ``parsed`` is the JSON, or the sanitized HTML, or the text."""

    parsed: str


def parse_answer(text: str, fmt: OutputFormat, schema: dict[str, Any] | None = None,
                 ) -> Parsed:
    """The stored form of ``text`` in format ``fmt``.

    Raises:
        FormatError: ``json`` that does not parse or does not fit ``schema``.
    """
    if fmt == "json":
        return Parsed(json.dumps(parse_json(text, schema), separators=(",", ":"),
                                 ensure_ascii=False))
    if fmt == "markdown":
        return Parsed(sanitize_html(_MARKDOWN.render(text)))
    if fmt == "html":
        return Parsed(sanitize_html(text))
    return Parsed(text)


def parse_json(text: str, schema: dict[str, Any] | None = None) -> Any:
    """The JSON value of an answer, checked against ``schema`` when given."""
    fenced = _FENCE.match(text)
    body = fenced.group("body") if fenced else text
    try:
        value = json.loads(body)
    except ValueError as error:
        raise FormatError(f"the answer is not JSON: {error}",
                          reason="answer_not_json") from None
    if schema is not None:
        problems = [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
                    for _, e in zip(range(MAX_SCHEMA_ERRORS),
                                    _validator(schema).iter_errors(value), strict=False)]
        if problems:
            raise FormatError("the answer does not fit the schema: " + "; ".join(problems),
                              reason="answer_off_schema")
    return value


def sanitize_html(html: str) -> str:
    """``html`` with scripts, styles, event handlers and non-web URLs removed."""
    return nh3.clean(html, url_schemes=set(_URL_SCHEMES))


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ``InvalidJobError`` unless ``schema`` is a JSON Schema beamish can use."""
    try:
        _validator(schema)
    except jsonschema_rs.ValidationError as error:
        first = str(error).splitlines()[0]
        raise InvalidJobError(f"schema is not a usable JSON Schema: {first}") from None


def _validator(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema, retriever=_refuse_remote)


def _refuse_remote(uri: str) -> Any:
    raise ValueError(f"$ref to {uri!r}: only references inside the schema are followed")


__all__ = ["FormatError", "Parsed", "check_schema", "parse_answer", "parse_json",
           "sanitize_html"]
