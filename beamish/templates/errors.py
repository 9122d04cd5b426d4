"""Every exception ``beamish.templates`` raises::

    TemplateError
    ├── TemplateNotFoundError    no such template, version or label           (HTTP 404)
    ├── TemplateSyntaxError      the source does not compile: line and message (HTTP 422)
    ├── TemplateSchemaError      the variables' JSON Schema is no valid schema (HTTP 422)
    ├── TemplateVariablesError   variables missing or mistyped, each named     (HTTP 422)
    └── TemplateRenderError      the sandbox refused the render: an escape, too big,
                                 too slow, too deep                           (HTTP 422)

Store errors (``beamish.store.errors``) pass through unchanged: a label past the cap is a
``ConflictError``, the database being down a ``StoreUnavailableError``.
"""

from __future__ import annotations

from typing import Literal

RenderProblem = Literal["sandbox", "too_big", "too_slow", "too_deep", "invalid"]
"""Why a render was refused: a forbidden access, output or a value past its cap, the time
limit, call depth past its cap, or an operation that failed (a division by zero)."""


class TemplateError(Exception):
    """Base class of every error raised by ``beamish.templates``."""


class TemplateNotFoundError(TemplateError, LookupError):
    """No such template, or it has no such version or label."""


class TemplateSyntaxError(TemplateError, ValueError):
    """A template's source does not compile.

    Attributes:
        line: the line of the error in ``part`` (1-based), when Jinja2 knows it.
        part: ``prompt`` or ``system``.
    """

    def __init__(self, part: str, line: int | None, message: str) -> None:
        self.part = part
        self.line = line
        where = f"line {line}" if line is not None else "an unknown line"
        super().__init__(f"the {part} template does not compile: {message} (at {where})")


class TemplateSchemaError(TemplateError, ValueError):
    """The JSON Schema given for a template's variables is not a valid schema."""


class TemplateVariablesError(TemplateError, ValueError):
    """The variables given to a render are missing or mistyped.

    Attributes:
        problems: one ``"<variable path>: <what is wrong>"`` per problem.
    """

    def __init__(self, template: str, problems: tuple[str, ...]) -> None:
        self.problems = problems
        super().__init__(f"the variables of template {template!r} are not valid: "
                         + "; ".join(problems))


class TemplateRenderError(TemplateError):
    """The sandbox refused to finish a render.

    Attributes:
        problem: which kind of refusal (``RenderProblem``).
    """

    def __init__(self, problem: RenderProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)


__all__ = ["RenderProblem", "TemplateError", "TemplateNotFoundError", "TemplateRenderError",
           "TemplateSchemaError", "TemplateSyntaxError", "TemplateVariablesError"]
