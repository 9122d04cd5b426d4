"""Compile and render prompt templates in Jinja2's sandbox, within bounds of size and time.

Sans-I/O apart from the worker thread: ``compile_source`` and ``render`` are plain functions;
``beamish.templates.service`` runs ``render`` off the event loop through
``beamish.templates._thread.run_in_thread``, the last of the guards below.

What a template may do. Jinja2's ``SandboxedEnvironment`` refuses private and internal
attributes (``__class__``, ``__globals__``, ``_TemplateReference__context``), unsafe
callables and ``str.format`` escapes; ``StrictUndefined`` makes every missing variable an
error; autoescape is off (prompts are text, not HTML). The only names a template sees are
the variables it is given and a bounded ``range`` — no ``cycler``, ``joiner``, ``namespace``
or ``lipsum``.

The bounds, each a module constant and each refused with a ``TemplateRenderError``:

* output: ``MAX_OUTPUT_CHARS`` (256 KiB of text); the render is a ``generate()`` whose chunks
  are counted, so it stops as soon as the output passes the cap.
* values: ``MAX_VALUE_LEN`` items or characters for anything an operation returns, checked
  *before* the work where the size can be known: ``*``, ``**``, ``+`` and ``%`` (binary
  operations are intercepted), ``range`` (at most ``MAX_RANGE`` steps), and every call and
  filter, whose size arguments must stay under the cap and whose inputs multiplied
  (``text.replace('', long)``, a long separator joining a long list) under
  ``MAX_CALL_WORK``; ``join`` adds up its parts first.
* time: ``RENDER_TIMEOUT_S`` (1 s), checked at every call, attribute, item access and
  ``range`` step; a loop that reaches none of them is interrupted from outside (see
  ``_thread``).
* depth: ``MAX_CALL_DEPTH`` nested macro calls (a macro calling itself).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import SandboxedEnvironment

from beamish.templates.errors import TemplateRenderError, TemplateSyntaxError

MAX_OUTPUT_CHARS = 256 * 1024
"""The longest rendered prompt, in characters."""

MAX_VALUE_LEN = MAX_OUTPUT_CHARS
"""The longest string or collection an operation of a template may make."""

MAX_INT_BITS = 4096
"""The largest integer a template may compute, in bits."""

MAX_RANGE = 10_000
"""The most steps ``range`` may take."""

MAX_CALL_WORK = 64 * MAX_VALUE_LEN
"""The cap on (length of what a method or filter works on + 1) x (its largest argument + 1):
what multiplies its input (``text.replace('', long)``, ``text|indent(width)``)."""

MAX_CALL_DEPTH = 32
"""The most macro calls that may be nested (a macro calling itself, directly or not)."""

RENDER_TIMEOUT_S = 1.0
"""How long one render may take, in seconds."""

_SEQUENCES = (str, bytes, list, tuple)
# A width or precision in a %-format or a str.format spec: "%-5000s", "{:>99999}", "{0:.9}".
_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?(\d+)")


@dataclass(slots=True)
class _Budget:
    """The deadline and macro depth of the render running in this thread."""

    deadline: float
    depth: int = 0


_local = threading.local()


def _budget() -> _Budget:
    budget: _Budget | None = getattr(_local, "budget", None)
    # Outside render() (Jinja2 folding constants while compiling): a fresh budget each time.
    return budget if budget is not None else _Budget(time.monotonic() + RENDER_TIMEOUT_S)


def _check_time() -> None:
    if time.monotonic() > _budget().deadline:
        raise TemplateRenderError("too_slow", f"the template took longer than "
                                  f"{RENDER_TIMEOUT_S:g} s to render; simplify its loops")


def _too_big(what: str) -> TemplateRenderError:
    return TemplateRenderError("too_big", f"{what} is past the template limit of "
                               f"{MAX_VALUE_LEN} items or characters")


def _size(value: Any) -> int:
    """A size for the caps: length of a collection, magnitude of an int, else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return abs(value)
    return len(value) if isinstance(value, Sized) else 0


def _check_value(value: Any, what: str) -> Any:
    if isinstance(value, jinja2.Undefined):  # raises when used, never has a size
        return value
    if isinstance(value, int) and not isinstance(value, bool) and (
            value.bit_length() > MAX_INT_BITS):
        raise TemplateRenderError("too_big", f"{what} is an integer of more than "
                                  f"{MAX_INT_BITS} bits")
    if isinstance(value, Sized) and not isinstance(value, range) and len(value) > MAX_VALUE_LEN:
        raise _too_big(what)
    return value


def _check_format(spec: str) -> None:
    for match in _PERCENT_WIDTH.finditer(spec):
        if "*" in match.groups() or any(int(g) > MAX_VALUE_LEN for g in match.groups()
                                        if g is not None and g != "*"):
            raise _too_big("a %-format width")
    for match in _BRACE_WIDTH.finditer(spec):
        if int(match.group(1)) > MAX_VALUE_LEN:
            raise _too_big("a format width")


def _check_call(target: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call whose result would be past the caps, before it runs.

    ``target`` is what a method or filter works on (None for a plain function or macro,
    whose arguments are only checked one by one)."""
    given = (*args, *kwargs.values())
    for value in given:
        _check_value(value, "an argument")
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_VALUE_LEN:
            raise _too_big(f"a size argument ({value})")
    if isinstance(target, (*_SEQUENCES, dict)) and given:
        largest = max(_size(v) for v in given)
        if (_size(target) + 1) * (largest + 1) > MAX_CALL_WORK:
            raise _too_big("what the call would make")


def _check_join(parts: Any, separator: str) -> list[Any]:
    items = list(parts)
    total = sum(len(str(i)) for i in items) + len(separator) * max(len(items) - 1, 0)
    if total > MAX_VALUE_LEN:
        raise _too_big("the joined string")
    return items


class _BoundedRange:
    """``range`` for templates: at most ``MAX_RANGE`` steps, the deadline checked at each."""

    __slots__ = ("_steps",)

    def __init__(self, *args: int) -> None:
        steps = range(*args)
        if len(steps) > MAX_RANGE:
            raise TemplateRenderError("too_big", f"range of {len(steps)} steps is past the "
                                      f"limit of {MAX_RANGE}")
        self._steps = steps

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[int]:
        for step in self._steps:
            _check_time()
            yield step


class _Sandbox(SandboxedEnvironment):
    """The sandbox with every operation checked against the render's budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        _check_binop(operator, left, right)
        return _check_value(super().call_binop(context, operator, left, right), "the result")

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        _check_time()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name == "join" and args:
            args = (_check_join(args[0], owner), *args[1:])
        _check_call(owner, args, kwargs)
        if not isinstance(__obj, Macro):
            return _check_value(super().call(__context, __obj, *args, **kwargs), "the result")
        budget = _budget()
        if budget.depth >= MAX_CALL_DEPTH:
            raise TemplateRenderError("too_deep", f"macros nest more than {MAX_CALL_DEPTH} "
                                      "deep (does a macro call itself without end?)")
        budget.depth += 1
        try:
            return _check_value(super().call(__context, __obj, *args, **kwargs), "the result")
        finally:
            budget.depth -= 1

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_time()
        _check_method(obj, attribute)
        return _check_value(super().getattr(obj, attribute), "the value")

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_time()
        _check_method(obj, argument)
        return _check_value(super().getitem(obj, argument), "the value")


def _check_method(obj: Any, name: Any) -> None:
    # The sandbox hands str.format out wrapped (no __self__ left to check at the call), so
    # the format string's widths are checked when the method is looked up.
    if isinstance(obj, str) and name in ("format", "format_map"):
        _check_format(obj)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(times, int) and (
                    len(seq) * times > MAX_VALUE_LEN):
                raise _too_big("the repeated value")
        if isinstance(left, int) and isinstance(right, int) and (
                left.bit_length() + right.bit_length() > MAX_INT_BITS):
            raise _too_big("the product")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
            raise TemplateRenderError("too_big", f"the power is an integer of more than "
                                      f"{MAX_INT_BITS} bits")
    elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        if len(left) + len(right) > MAX_VALUE_LEN:
            raise _too_big("the sum")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(function, "jinja_pass_arg", None)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        own = args[1:] if passes is not None else args  # the context or environment first
        if name == "format" and own and isinstance(own[0], str):
            _check_format(own[0])
        if name == "join" and own:
            _check_join(own[0], str(own[1]) if len(own) > 1 else str(kwargs.get("d", "")))
        if own:
            _check_call(own[0], tuple(own[1:]), kwargs)
        return _check_value(function(*args, **kwargs), f"the result of filter {name!r}")

    return guarded


def _environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                   auto_reload=False, cache_size=0)
    env.globals.clear()
    env.globals["range"] = _BoundedRange
    env.filters = {name: _guarded_filter(name, f) for name, f in env.filters.items()}
    return env


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class CompiledPart:
    """One compiled template source (the prompt or the system prompt)."""

    part: str
    template: jinja2.Template


def compile_source(source: str, part: str = "prompt") -> CompiledPart:
    """Compile ``source``; raises ``TemplateSyntaxError`` with the line and Jinja2's message."""
    try:
        return CompiledPart(part, _ENV.from_string(source))
    except jinja2.TemplateSyntaxError as error:
        raise TemplateSyntaxError(part, error.lineno, error.message or str(error)) from None
    except TemplateRenderError as error:  # a constant folded at compile time was too big
        raise TemplateSyntaxError(part, None, str(error)) from None


def render(compiled: CompiledPart, variables: Mapping[str, Any], *,
           timeout: float = RENDER_TIMEOUT_S) -> str:
    """Render in this thread; the text, or ``TemplateRenderError`` (and ``UndefinedError``
    for a missing variable, which the service names in a ``TemplateVariablesError``)."""
    _local.budget = _Budget(time.monotonic() + timeout)
    chunks: list[str] = []
    total = 0
    try:
        for chunk in compiled.template.generate(dict(variables)):
            total += len(chunk)
            if total > MAX_OUTPUT_CHARS:
                raise TemplateRenderError("too_big", f"the rendered {compiled.part} is longer "
                                          f"than {MAX_OUTPUT_CHARS} characters")
            chunks.append(chunk)
    except SecurityError as error:
        raise TemplateRenderError("sandbox", f"the template tried something the sandbox "
                                  f"forbids: {error}") from None
    except RecursionError:
        raise TemplateRenderError("too_deep", "the template recursed too deep") from None
    except (jinja2.UndefinedError, TemplateRenderError):
        raise
    except Exception as error:  # the template's own logic failed: 1 / 0, a bad filter input
        raise TemplateRenderError("invalid", f"the template failed: {error}") from None
    finally:
        _local.budget = None
    return "".join(chunks)


__all__ = ["MAX_CALL_DEPTH", "MAX_CALL_WORK", "MAX_INT_BITS", "MAX_OUTPUT_CHARS", "MAX_RANGE",
           "MAX_VALUE_LEN", "RENDER_TIMEOUT_S", "CompiledPart", "compile_source", "render"]
