"""Answers into stored outputs, without a loop: JSON checked, HTML sanitized."""

from __future__ import annotations

import json

import pytest

from beamish.jobs import FormatError, InvalidJobError
from beamish.jobs.formats import check_schema, parse_answer, parse_json, sanitize_html


def test_text_is_stored_as_it_is() -> None:
    """A text answer is kept byte for byte, markup and all."""
    assert parse_answer("<b>hi</b>", "text").parsed == "<b>hi</b>"


@pytest.mark.parametrize("html", [
    "<p>a<script>alert(1)</script></p>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<div onclick="steal()" style="x">x</div>',
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
])
def test_html_loses_scripts_handlers_and_script_urls(html: str) -> None:
    """Scripts, event handlers, javascript: URLs and frames are removed from HTML."""
    cleaned = sanitize_html(html).lower()
    assert "script" not in cleaned
    assert "onerror" not in cleaned
    assert "onclick" not in cleaned
    assert "iframe" not in cleaned


def test_html_keeps_harmless_markup_and_web_links() -> None:
    """Ordinary markup and http(s) links survive sanitizing."""
    cleaned = sanitize_html('<p><em>a</em> <a href="https://example.org">b</a></p>')
    assert cleaned == ('<p><em>a</em> <a href="https://example.org" '
                       'rel="noopener noreferrer">b</a></p>')


def test_markdown_is_rendered_to_safe_html() -> None:
    """Markdown becomes HTML; raw HTML in it is escaped, javascript: links are not made."""
    parsed = parse_answer("# T\n\n**b** <script>x()</script> [l](javascript:alert(1)) "
                          "[ok](https://example.org)", "markdown").parsed
    assert "<h1>T</h1>" in parsed
    assert "<strong>b</strong>" in parsed
    assert "<script" not in parsed
    assert 'href="javascript' not in parsed
    assert 'href="https://example.org"' in parsed


@pytest.mark.parametrize("answer", ['{"a": [1, 2]}', '```json\n{"a": [1, 2]}\n```',
                                    '  ```\n{"a": [1, 2]}```  '])
def test_json_is_parsed_fenced_or_not_and_stored_compact(answer: str) -> None:
    """A JSON answer, bare or in one fenced block, is stored as compact JSON."""
    assert parse_answer(answer, "json").parsed == '{"a":[1,2]}'


def test_an_answer_that_is_not_json_is_a_retryable_format_error() -> None:
    """Prose where JSON was asked for is a FormatError, which retries, saying why."""
    with pytest.raises(FormatError, match="not JSON") as caught:
        parse_json("Sure! Here is the JSON you asked for")
    assert caught.value.retryable


def test_json_off_the_schema_names_each_violation() -> None:
    """JSON that does not fit the schema is a FormatError naming where and why."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["t"]}
    with pytest.raises(FormatError) as caught:
        parse_json(json.dumps({"n": "x"}), schema)
    assert '"t" is a required property' in str(caught.value)
    assert "n: " in str(caught.value)


def test_a_schema_is_checked_when_the_job_is_made() -> None:
    """A schema that is not JSON Schema, or refers outside itself, is refused at enqueue."""
    check_schema({"type": "object", "$defs": {"a": {"type": "string"}},
                  "properties": {"x": {"$ref": "#/$defs/a"}}})
    with pytest.raises(InvalidJobError, match="not a usable JSON Schema"):
        check_schema({"type": 12})
    with pytest.raises(InvalidJobError, match="only references inside the schema"):
        check_schema({"$ref": "https://example.org/schema.json"})
