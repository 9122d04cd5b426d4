"""Versioned prompt templates: stored in the store, rendered in Jinja2's sandbox, cached.

::

    from beamish.templates import Templates
    from beamish.store import NewTemplateVersion

    templates = Templates(store)                        # or Application.templates
    await templates.create_version(NewTemplateVersion(name="greet", prompt="Hi {{ name }}"))
    rendered = await templates.render("greet", {"name": "ada"})

A template has a name, immutable versions numbered 1, 2, ... by the database, and labels
(``production`` is served by default; without it, the latest version). ``service`` holds
``Templates``, ``render`` the sandbox and its bounds, ``errors`` the exceptions.
"""

from beamish.templates.errors import (
    RenderProblem,
    TemplateError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSchemaError,
    TemplateSyntaxError,
    TemplateVariablesError,
)
from beamish.templates.render import (
    MAX_OUTPUT_CHARS,
    RENDER_TIMEOUT_S,
    compile_source,
)
from beamish.templates.service import MAX_VARIABLES_BYTES, RenderedPrompt, Templates

__all__ = [
    "MAX_OUTPUT_CHARS", "MAX_VARIABLES_BYTES", "RENDER_TIMEOUT_S", "RenderProblem",
    "RenderedPrompt", "TemplateError", "TemplateNotFoundError", "TemplateRenderError",
    "TemplateSchemaError", "TemplateSyntaxError", "TemplateVariablesError", "Templates",
    "compile_source",
]
