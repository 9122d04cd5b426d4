"""Admin endpoints for prompt templates (``/api/admin/templates/...``).

Every one needs a token with the ``admin`` scope (403 otherwise); every write is in the audit
log (``GET /api/admin/audit``, entity ``template``) under the caller's user id.

* ``POST /api/admin/templates`` creates a template with its version 1 (409 if the name is
  taken: add versions with the next endpoint); ``POST /api/admin/templates/{name}/versions``
  adds the next version (404 if the template does not exist). Both answer the version, 201.
  A source that does not compile is a 422 saying the line; a ``variables_schema`` that is no
  JSON Schema is a 422.
* ``GET /api/admin/templates`` lists templates with their latest version and labels;
  ``GET /api/admin/templates/{name}`` shows one with its labels and newest versions;
  ``GET /api/admin/templates/{name}/versions/{version}`` one version.
* ``PUT /api/admin/templates/{name}/labels/{label}`` with ``{"version": n}`` points a label
  (``production``, ``staging``, any name) at a version in one write; ``DELETE`` removes it.
  Without a ``production`` label a template serves its latest version.
* ``POST /api/admin/templates/{name}/preview`` renders with the given ``variables`` (and an
  optional ``label`` or ``version``): the prompt and system prompt; with a ``user_id``, also
  the model, provider and provenance that user would get for the template's task type.
  Missing or mistyped variables are a 422 naming each; a render the sandbox refuses (an
  escape, too big, too slow) a 422 whose ``code`` says which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import Field, model_validator

from beamish.auth.names import NAME_PATTERN
from beamish.server.api.deps import AdminPrincipal, AppDep, get_admin
from beamish.server.api.errors import ERROR_RESPONSES
from beamish.server.api.models import Body, ConfigView, Out
from beamish.store import (
    MAX_TEMPLATE_CHARS,
    NewTemplateVersion,
    OutputFormat,
    TemplateLabel,
    TemplateSummary,
    TemplateVersion,
)
from beamish.store.text import NO_NUL, TextObject
from beamish.templates import RenderedPrompt

router = APIRouter(prefix="/api/admin/templates", tags=["templates"],
                   responses=ERROR_RESPONSES, dependencies=[Depends(get_admin)])

MAX_LISTED = 1000
"""The most templates, or versions of one, a listing answers."""

Named = Annotated[str, Field(pattern=NAME_PATTERN)]
TemplateName = Annotated[str, Path(pattern=NAME_PATTERN, description="a template's name")]
LabelName = Annotated[str, Path(pattern=NAME_PATTERN,
                                description="a label: production, staging or any name")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="a version number")]


class VersionIn(Body):
    """A template version: Jinja2 sources, the task it serves, its output and variables."""

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS), NO_NUL] = Field(
        description="the prompt, in Jinja2 syntax")
    system: Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS), NO_NUL] | None = Field(
        default=None, description="the system prompt, in Jinja2 syntax")
    task_type: Named = Field(default="chat", description="the task type it serves")
    output_format: OutputFormat | None = None
    variables_schema: TextObject | None = Field(
        default=None, description="a JSON Schema the variables of a render must satisfy")

    def new(self, name: str) -> NewTemplateVersion:
        """The store's input for version of template ``name``."""
        return NewTemplateVersion(name=name, **self.model_dump(exclude={"name"}))


class TemplateIn(VersionIn):
    """A new template: its name and version 1."""

    name: Named


class LabelIn(Body):
    """Which version a label points at."""

    version: int = Field(ge=1, le=2**31 - 1)


class PreviewIn(Body):
    """Variables to render with; optionally a label or a version, and a user to resolve for."""

    variables: dict[str, Any] = Field(default_factory=dict)
    label: Named | None = None
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    user_id: str | None = Field(default=None, min_length=1, max_length=256,
                                description="resolve the model this user would get")

    @model_validator(mode="after")
    def _one_choice(self) -> PreviewIn:
        if self.label is not None and self.version is not None:
            raise ValueError("give a label or a version, not both")
        return self


class TemplateList(Out):
    """Templates by name, each with its latest version and labels (label → version)."""

    templates: tuple[TemplateSummary, ...]


class TemplateDetail(Out):
    """One template: its labels and its newest versions, newest first."""

    name: str
    latest_version: int
    labels: dict[str, int]
    created_at: datetime
    updated_at: datetime
    versions: tuple[TemplateVersion, ...]


class PreviewOut(Out):
    """A rendered template and, for a user, the configuration the task would use."""

    rendered: RenderedPrompt
    config: ConfigView | None = Field(
        default=None, description="what user_id would get for the template's task type")


@router.post("", summary="Create a template with its first version",
             status_code=status.HTTP_201_CREATED)
async def create_template(body: TemplateIn, caller: AdminPrincipal,
                          rt: AppDep) -> TemplateVersion:
    """Create template ``name`` as version 1 (409 if it exists: add a version instead)."""
    return await rt.templates.create_version(body.new(body.name), actor=caller.user_id,
                                             only_new=True)


@router.get("", summary="List prompt templates")
async def list_templates(rt: AppDep, limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
                         ) -> TemplateList:
    """The first ``limit`` templates by name."""
    return TemplateList(templates=tuple(await rt.store.list_templates(limit=limit)))


@router.post("/{name}/versions", summary="Add a template version",
             status_code=status.HTTP_201_CREATED)
async def add_version(name: TemplateName, body: VersionIn, caller: AdminPrincipal,
                      rt: AppDep) -> TemplateVersion:
    """Add the next version of ``name`` (404 if there is no such template)."""
    await rt.templates.summary(name)
    return await rt.templates.create_version(body.new(name), actor=caller.user_id)


@router.get("/{name}", summary="Show a template with its labels and versions")
async def get_template(name: TemplateName, rt: AppDep,
                       limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
                       ) -> TemplateDetail:
    """The template, its labels and its newest ``limit`` versions (404 if none)."""
    summary = await rt.templates.summary(name)
    versions = await rt.store.list_template_versions(name, limit=limit)
    return TemplateDetail(**summary.model_dump(), versions=tuple(versions))


@router.get("/{name}/versions/{version}", summary="Show one template version")
async def get_version(name: TemplateName, version: VersionNumber, rt: AppDep,
                      ) -> TemplateVersion:
    """Version ``version`` of the template (404 if none)."""
    return await rt.templates.get(name, version=version)


@router.put("/{name}/labels/{label}", summary="Point a template label at a version")
async def set_label(name: TemplateName, label: LabelName, body: LabelIn,
                    caller: AdminPrincipal, rt: AppDep) -> TemplateLabel:
    """Move (or create) ``label`` to ``body.version`` in one write (404 if no such version)."""
    return await rt.templates.set_label(name, label, body.version, actor=caller.user_id)


@router.delete("/{name}/labels/{label}", summary="Remove a template label",
               status_code=status.HTTP_204_NO_CONTENT)
async def delete_label(name: TemplateName, label: LabelName, caller: AdminPrincipal,
                       rt: AppDep) -> Response:
    """Remove ``label`` (404 if the template has none of that name)."""
    await rt.templates.delete_label(name, label, actor=caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/preview", summary="Render a template with given variables")
async def preview(name: TemplateName, body: PreviewIn, rt: AppDep) -> PreviewOut:
    """The rendered prompt and system prompt; with ``user_id``, the model, provider and
    provenance that user would get for the template's task type."""
    rendered = await rt.templates.render(name, body.variables, label=body.label,
                                         version=body.version)
    if body.user_id is None:
        return PreviewOut(rendered=rendered)
    config = await rt.services.current_resolver().preview(body.user_id, rendered.task_type)
    return PreviewOut(rendered=rendered, config=ConfigView.of(config))


__all__ = ["MAX_LISTED", "router"]
