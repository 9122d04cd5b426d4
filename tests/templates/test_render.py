"""The sandbox: escapes refused, sizes bounded before the work, syntax errors with lines."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest

from beamish.templates.errors import TemplateRenderError, TemplateSyntaxError
from beamish.templates.render import (
    MAX_CALL_DEPTH,
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    compile_source,
    render,
)


def run(source: str, **variables: Any) -> str:
    return render(compile_source(source), variables)


def test_a_plain_template_renders_with_filters_loops_and_formatting() -> None:
    """Variables, range, join, %-format and str.format with small widths all work."""
    out = run("Hi {{ name }}: {% for i in range(3) %}{{ i }}{% endfor %} {{ xs|join(',') }} "
              "{{ '%3s'|format('a') }} {{ '{:>2}'.format(1) }} {{ 'ab' * 2 }}",
              name="ada", xs=[1, 2])
    assert out == "Hi ada: 012 1,2   a  1 abab"


def test_autoescape_is_off_and_trailing_newlines_stay() -> None:
    """Prompts are text: markup passes through untouched."""
    assert run("<b>{{ x }}</b>\n", x="&") == "<b>&</b>\n"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ x.__class__.__mro__[1].__subclasses__() }}",
    "{{ range.__init__.__globals__ }}",
    "{{ range.__iter__.__globals__['__builtins__'] }}",
    "{% macro m() %}{% endmacro %}{{ m._func.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{a.__class__}'.format_map({'a': x}) }}",
    "{{ x|attr('__class__') }}",
    "{{ x.__init__ }}",
])
def test_attribute_escapes_are_refused_by_the_sandbox(source: str) -> None:
    """Internal attributes, reached by any route, are a sandbox violation."""
    with pytest.raises(TemplateRenderError, match="sandbox forbids") as caught:
        run(source, x="s")
    assert caught.value.problem == "sandbox"


@pytest.mark.parametrize("name", ["cycler", "joiner", "namespace", "lipsum", "dict"])
def test_no_globals_but_range(name: str) -> None:
    """Jinja2's default globals are gone: using one is an undefined name."""
    with pytest.raises(jinja2.UndefinedError, match=f"'{name}' is undefined"):
        run(f"{{{{ {name}() }}}}")


@pytest.mark.parametrize(("source", "problem"), [
    ("{{ 'a' * 10**9 }}", "too_big"),
    ("{{ ([1] * 10**8)|length }}", "too_big"),
    ("{{ 10 ** 1000000 }}", "too_big"),
    ("{% for i in range(10**9) %}{% endfor %}", "too_big"),
    ("{% for i in range(200000) %}{% endfor %}", "too_big"),
    ("{{ '%999999999s' % 'a' }}", "too_big"),
    ("{{ '%*s' % (5, 'a') }}", "too_big"),
    ("{{ '%999999999s'|format('a') }}", "too_big"),
    ("{{ '{:>999999999}'.format(1) }}", "too_big"),
    ("{{ 'a'.ljust(10**9) }}", "too_big"),
    ("{{ 'a'|center(1000000000) }}", "too_big"),
    ("{{ s.replace('', s) }}", "too_big"),
    ("{{ ([s] * 100)|join }}", "too_big"),
    ("{{ (s ~ '-').join([s, s, s, s]) }}", "too_big"),
    ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('ab') }}", "too_big"),
    ("{{ 1 / 0 }}", "invalid"),
])
def test_huge_values_and_endless_recursion_are_refused_before_the_work(
        source: str, problem: str) -> None:
    """Each refused with the kind of problem, before it allocates or runs away."""
    with pytest.raises(TemplateRenderError) as caught:
        run(source, s="x" * 100_000)
    assert caught.value.problem == problem


def test_range_is_bounded_but_usable_up_to_its_cap() -> None:
    """range of exactly MAX_RANGE steps renders (and has a length); one more does not."""
    assert run(f"{{{{ range({MAX_RANGE})|list|length }}}}") == str(MAX_RANGE)
    assert run("{{ range(2, 8, 2)|length }} {{ range(3)|join(',') }}") == "3 0,1,2"
    with pytest.raises(TemplateRenderError, match="steps is past the limit"):
        run(f"{{{{ range({MAX_RANGE + 1})|list|length }}}}")


def test_a_macro_takes_a_long_text_whole() -> None:
    """Only a method's or filter's own input multiplies with its arguments, not a macro's."""
    source = "{% macro quote(text) %}> {{ text|length }}{% endmacro %}{{ quote(doc) }}"
    assert run(source, doc="x" * 200_000) == "> 200000"
    assert len(run("{{ doc.replace('x', 'yy') }}", doc="x" * 100_000)) == 200_000


def test_a_macro_calling_itself_without_end_is_refused_at_the_depth_cap() -> None:
    """Endless recursion stops at MAX_CALL_DEPTH with a message saying so."""
    with pytest.raises(TemplateRenderError, match=f"nest more than {MAX_CALL_DEPTH} deep"):
        run("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")


def test_macros_may_nest_up_to_the_cap() -> None:
    """A macro recursing MAX_CALL_DEPTH - 1 levels with an end renders."""
    source = ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}end{% endif %}"
              "{% endmacro %}{{ f(depth) }}")
    assert run(source, depth=MAX_CALL_DEPTH - 1) == "end"


def test_output_stops_as_soon_as_it_passes_the_cap() -> None:
    """A loop writing past MAX_OUTPUT_CHARS is refused; exactly the cap is allowed."""
    chunk = "x" * 1024
    fits = f"{{% for i in range({MAX_OUTPUT_CHARS // 1024}) %}}{{{{ s }}}}{{% endfor %}}"
    assert len(run(fits, s=chunk)) == MAX_OUTPUT_CHARS
    with pytest.raises(TemplateRenderError, match="longer than") as caught:
        run(fits.replace("range(", "range(1 + "), s=chunk)
    assert caught.value.problem == "too_big"


def test_a_template_past_its_time_is_stopped_at_the_next_check() -> None:
    """A render with a spent deadline stops at its first call, attribute or range step."""
    with pytest.raises(TemplateRenderError, match="longer than") as caught:
        render(compile_source("{% for i in range(10) %}{{ i }}{% endfor %}"), {}, timeout=-1)
    assert caught.value.problem == "too_slow"


def test_a_missing_variable_is_an_undefined_error_naming_it() -> None:
    """StrictUndefined: printing, iterating or testing a missing name fails."""
    for source in ("{{ who }}", "{% for x in who %}{% endfor %}", "{{ who.name }}"):
        with pytest.raises(jinja2.UndefinedError, match="'who' is undefined"):
            run(source)
    assert run("{{ 'yes' if who is defined else 'no' }}") == "no"


def test_the_next_render_after_a_refusal_works() -> None:
    """A refused render leaves nothing behind: the same thread renders the next one."""
    with pytest.raises(TemplateRenderError):
        run("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")
    assert run("{% macro f(n) %}{{ n }}{% endmacro %}{{ f(1) }}") == "1"


@pytest.mark.parametrize(("source", "line"), [
    ("Hello {{ name }", 1),
    ("one\ntwo\n{% for x in xs %}\n{{ x }}", 4),
    ("{% endif %}", 1),
])
def test_a_syntax_error_names_the_part_and_line(source: str, line: int) -> None:
    """Compiling bad source raises TemplateSyntaxError with the line and Jinja2's message."""
    with pytest.raises(TemplateSyntaxError, match=f"the system template does not compile: "
                                                  f".*at line {line}") as caught:
        compile_source(source, "system")
    assert (caught.value.part, caught.value.line) == ("system", line)
