"""The prompt template methods of ``SqlStore`` (``prompt_templates`` and its two tables).

A template row counts the versions it has handed out (``last_version``): a new version takes
the next number in the same statement that creates the template or bumps the counter, so
two concurrent writers get two numbers and no number is ever handed out twice. Versions are
immutable. A label is a (template, label) row pointing at one version: moving it is one
upsert. Without a ``production`` label a template serves its latest version.

Every write runs in the store's config write (``TemplateChanged(name)`` published once the
transaction has ended) and writes a ``config_audit`` row of entity ``template``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import Any

from beamish.store._backend import Backend, Executor, Row, utc_now
from beamish.store.errors import ConflictError, NotFoundError
from beamish.store.events import ConfigChange, TemplateChanged
from beamish.store.models import (
    PRODUCTION_LABEL,
    NewTemplateVersion,
    TemplateLabel,
    TemplateSummary,
    TemplateVersion,
)

MAX_LABELS_PER_TEMPLATE = 100
"""How many labels one template may have (a label is an admin's name for a version)."""

_VERSION = "SELECT * FROM prompt_template_versions WHERE name = $1"
_LABELLED = """SELECT v.* FROM prompt_template_labels l
    JOIN prompt_template_versions v ON v.name = l.name AND v.version = l.version
    WHERE l.name = $1 AND l.label = $2"""
# The production label's version, else the latest: what a template serves by default.
_SERVED = f"""{_VERSION} AND version = coalesce(
        (SELECT version FROM prompt_template_labels
            WHERE name = $1 AND label = '{PRODUCTION_LABEL}'),
        (SELECT last_version FROM prompt_templates WHERE name = $1))"""
_SUMMARIES = """SELECT t.name, t.last_version, t.created_at, t.updated_at, l.label, l.version
    FROM (SELECT * FROM prompt_templates {where} ORDER BY name LIMIT {limit}) t
    LEFT JOIN prompt_template_labels l ON l.name = t.name
    ORDER BY t.name, l.label"""


class TemplateQueries(ABC):
    """The prompt template methods of ``SqlStore``."""

    @property
    @abstractmethod
    def _template_backend(self) -> Backend: ...

    @abstractmethod
    def _config_write(self, change: ConfigChange,
                      ) -> AbstractAsyncContextManager[Executor]: ...

    @abstractmethod
    async def _audit_template(self, tx: Executor, actor: str, key: str, before: Any,
                              after: Any) -> None: ...

    async def create_template_version(self, new: NewTemplateVersion, *, actor: str = "system",
                                      only_new: bool = False) -> TemplateVersion:
        """Add the next version of ``new.name``, creating the template with version 1; with
        ``only_new``, raise ``ConflictError`` (and write nothing) if the template exists."""
        now = utc_now()
        async with self._config_write(TemplateChanged(new.name)) as tx:
            counted = await tx.fetchrow("""INSERT INTO prompt_templates
                    (name, last_version, created_at, updated_at) VALUES ($1, 1, $2, $2)
                ON CONFLICT (name) DO UPDATE SET
                    last_version = prompt_templates.last_version + 1,
                    updated_at = excluded.updated_at
                RETURNING last_version""", new.name, now)
            assert counted is not None, "the upsert returns the template's row"
            if only_new and counted["last_version"] != 1:  # rolled back with the bump
                raise ConflictError(f"template {new.name!r} already exists; add a version "
                                    "to it instead", kind="unique")
            row = await tx.fetchrow("""INSERT INTO prompt_template_versions (name, version,
                    prompt, system, task_type, output_format, variables_schema, created_at,
                    created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
                new.name, counted["last_version"], new.prompt, new.system, new.task_type,
                new.output_format,
                None if new.variables_schema is None else json.dumps(new.variables_schema),
                now, actor)
            created = TemplateVersion.model_validate(row)
            await self._audit_template(tx, actor, f"{new.name}/v{created.version}", None,
                                       created)
        return created

    async def get_template_version(self, name: str, *, version: int | None = None,
                                   label: str | None = None) -> TemplateVersion | None:
        """Version ``version``, else the one ``label`` points at, else the served one (the
        ``production`` label's, or the latest without one); None if there is none."""
        reader = self._template_backend.reader
        if version is not None and label is not None:
            raise ValueError("ask for a template version or a label, not both")
        if version is not None:
            row = await reader.fetchrow(_VERSION + " AND version = $2", name, version)
        elif label is not None:
            row = await reader.fetchrow(_LABELLED, name, label)
        else:
            row = await reader.fetchrow(_SERVED, name)
        return None if row is None else TemplateVersion.model_validate(row)

    async def get_template(self, name: str) -> TemplateSummary | None:
        """The template's latest version number and labels; None if it does not exist."""
        rows = await self._template_backend.reader.fetch(
            _SUMMARIES.format(where="WHERE name = $1", limit=1), name)
        found = _summaries(rows)
        return found[0] if found else None

    async def list_templates(self, *, limit: int = 1000) -> list[TemplateSummary]:
        """The first ``limit`` templates by name, each with its latest version and labels."""
        rows = await self._template_backend.reader.fetch(
            _SUMMARIES.format(where="", limit=int(limit)))
        return _summaries(rows)

    async def list_template_versions(self, name: str, *,
                                     limit: int = 100) -> list[TemplateVersion]:
        """The template's newest ``limit`` versions, newest first (empty if none)."""
        rows = await self._template_backend.reader.fetch(
            _VERSION + f" ORDER BY version DESC LIMIT {int(limit)}", name)
        return [TemplateVersion.model_validate(r) for r in rows]

    async def set_template_label(self, name: str, label: str, version: int, *,
                                 actor: str = "system") -> TemplateLabel:
        """Point ``label`` of template ``name`` at ``version`` (one write); raises
        ``NotFoundError`` if there is no such version, ``ConflictError`` when a new label
        would pass ``MAX_LABELS_PER_TEMPLATE``."""
        async with self._config_write(TemplateChanged(name)) as tx:
            if await tx.fetchrow(_VERSION + " AND version = $2", name, version) is None:
                raise NotFoundError(_missing_version(
                    name, version, await tx.fetchrow(
                        "SELECT last_version FROM prompt_templates WHERE name = $1", name)))
            before = await tx.fetchrow("SELECT * FROM prompt_template_labels "
                                       "WHERE name = $1 AND label = $2", name, label)
            if before is None:
                await _check_room(tx, name)
            row = await tx.fetchrow("""INSERT INTO prompt_template_labels
                    (name, label, version, updated_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (name, label) DO UPDATE SET version = excluded.version,
                    updated_at = excluded.updated_at
                RETURNING *""", name, label, version, utc_now())
            after = TemplateLabel.model_validate(row)
            await self._audit_template(tx, actor, f"{name}@{label}",
                                       _label(before), after)
        return after

    async def delete_template_label(self, name: str, label: str, *,
                                    actor: str = "system") -> None:
        """Remove ``label`` from template ``name``; raises ``NotFoundError`` if it has none."""
        async with self._config_write(TemplateChanged(name)) as tx:
            row = await tx.fetchrow("DELETE FROM prompt_template_labels "
                                    "WHERE name = $1 AND label = $2 RETURNING *", name, label)
            if row is None:
                raise NotFoundError(f"template {name!r} has no label {label!r}")
            await self._audit_template(tx, actor, f"{name}@{label}", _label(row), None)


def _missing_version(name: str, version: int, template: Row | None) -> str:
    if template is None:
        return f"template {name!r} does not exist; create it with its first version"
    return (f"template {name!r} has no version {version}; its versions are 1 to "
            f"{template['last_version']}")


async def _check_room(tx: Executor, name: str) -> None:
    counted = await tx.fetchrow(
        "SELECT count(*) AS n FROM prompt_template_labels WHERE name = $1", name)
    if counted is not None and counted["n"] >= MAX_LABELS_PER_TEMPLATE:
        raise ConflictError(f"template {name!r} already has {MAX_LABELS_PER_TEMPLATE} labels, "
                            "the most it may have; delete one first", kind="check")


def _label(row: Row | None) -> TemplateLabel | None:
    return None if row is None else TemplateLabel.model_validate(row)


def _summaries(rows: list[Row]) -> list[TemplateSummary]:
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        summary = found.setdefault(row["name"], {
            "name": row["name"], "latest_version": row["last_version"],
            "created_at": row["created_at"], "updated_at": row["updated_at"], "labels": {}})
        if row["label"] is not None:
            summary["labels"][row["label"]] = row["version"]
    return [TemplateSummary.model_validate(s) for s in found.values()]


__all__ = ["MAX_LABELS_PER_TEMPLATE", "TemplateQueries"]
