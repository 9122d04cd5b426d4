"""``Templates``: versioned prompt templates over a ``Store``, cached, rendered off the loop.

::

    templates = Templates(store)
    await templates.create_version(NewTemplateVersion(
        name="digest", prompt="Summarise for {{ reader }}:\\n{{ text }}",
        task_type="summarize", variables_schema={"type": "object",
                                                 "required": ["reader", "text"]}))
    await templates.set_label("digest", "production", 1)
    prompt = await templates.render("digest", {"reader": "ada", "text": "..."})
    prompt.prompt, prompt.version, prompt.label     # ("Summarise for ada:\\n...", 1, ...)
    templates.close()                                # stop following the store

**Which version.** ``version`` names one; else ``label``; else the template's ``production``
label, and while it has none, its latest version (so a template works from its first
version on, and pinning it is one ``set_label``).

**Writes** check before storing: both sources must compile (``TemplateSyntaxError`` with the
line) and the variables' JSON Schema must be a valid schema (``TemplateSchemaError``). No
source, schema, name or label holds a NUL character, which PostgreSQL cannot store
(``NewTemplateVersion`` refuses it, ``set_label`` a label with it); a read or a label's
move naming a template or label with NUL is ``TemplateNotFoundError``, as none can exist.

**Renders** check the variables first — at most ``MAX_VARIABLES_BYTES`` of JSON, and valid
under the version's schema when it has one (``TemplateVariablesError`` naming each problem;
a variable the template uses but was not given is named there too) — then render prompt and
system prompt in a worker thread under the sandbox's bounds (``beamish.templates.render``).

**Caches.** The version a (name, label) — or the latest — reads as, in a ``TTLCache`` of
``cache_size`` entries that each live ``ttl_s`` seconds; a numbered version, and compiled
templates and schema validators by (name, version), which never change (versions are
immutable and never deleted), each in an LRU of ``cache_size``. The store
publishes ``TemplateChanged(name)`` on every template write of this process (new version,
label moved or deleted) before the write returns; this drops that template's entries, so the
next render here sees the change with no TTL to wait for. A write the store cannot see —
another process on the same database, raw SQL — is seen once the entry expires: within
``ttl_s``, the same bound configs have (the application passes ``llm.cache_ttl_s``, 300 s,
as ``beamish.llm.resolver`` uses it). A load that a write overtook is not cached.

Options, with their defaults: ``cache_size`` — ``CACHE_SIZE`` (1,024); ``ttl_s`` —
``CACHE_TTL_S`` (300); ``timer`` — ``time.monotonic`` (the TTL's clock; tests pass a fake
one); ``timeout`` — ``RENDER_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import jsonschema_rs
from cachetools import LRUCache, TTLCache
from pydantic import BaseModel, ConfigDict

from beamish.compact_json import dumps
from beamish.store import (
    ConfigChange,
    NewTemplateVersion,
    NotFoundError,
    OutputFormat,
    Store,
    TemplateChanged,
    TemplateLabel,
    TemplateSummary,
    TemplateVersion,
)
from beamish.store.text import NUL, NUL_PROBLEM
from beamish.templates._thread import ThreadInterrupted, run_in_thread
from beamish.templates.errors import (
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSchemaError,
    TemplateVariablesError,
)
from beamish.templates.render import RENDER_TIMEOUT_S, CompiledPart, compile_source, render

MAX_VARIABLES_BYTES = 256 * 1024
"""The most variables a render takes, as bytes of compact JSON."""

MAX_SCHEMA_BYTES = 64 * 1024
"""The largest JSON Schema of variables a version may hold, as bytes of compact JSON."""

MAX_PROBLEMS = 20
"""The most variable problems one ``TemplateVariablesError`` lists."""

CACHE_SIZE = 1024
"""Default entries of each cache (versions read, compiled versions)."""

CACHE_TTL_S = 300.0
"""Default seconds a version read stays cached: how stale another process's write can be
(``LLMSettings.cache_ttl_s``'s default, which the application passes)."""

_Key = tuple[str, str, str | int | None]  # (name, "label" | "version", which)


class RenderedPrompt(BaseModel):
    """A rendered template: what to send, and which version of what made it.

    ``label`` is the label asked for (None when a version was named, or for the default:
    ``production``, or the latest version while there is none).
    """

    model_config = ConfigDict(frozen=True)

    template: str
    version: int
    label: str | None
    prompt: str
    system: str | None
    task_type: str
    output_format: OutputFormat | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    prompt: CompiledPart
    system: CompiledPart | None
    validator: jsonschema_rs.Validator | None


class Templates:
    """Prompt templates over ``store`` (see the module docs); ``close()`` stops following it.

    Args:
        store: where the templates live.
        cache_size: entries of each cache.
        ttl_s: seconds a version read stays cached (``ValueError`` unless more than 0).
        timer: the TTL's clock, in seconds (``time.monotonic``); tests pass a fake one.
        timeout: seconds a render may take.
    """

    def __init__(self, store: Store, *, cache_size: int = CACHE_SIZE,
                 ttl_s: float = CACHE_TTL_S, timer: Callable[[], float] = time.monotonic,
                 timeout: float = RENDER_TIMEOUT_S) -> None:
        if not ttl_s > 0:  # also refuses nan
            raise ValueError(f"ttl_s must be more than 0 seconds, not {ttl_s}")
        self._store = store
        self._timeout = timeout
        self._ttl_s = ttl_s
        # A label (or the latest version) can move in another process: read again after
        # ttl_s. A numbered version never changes (versions are immutable, never deleted).
        self._versions: TTLCache[_Key, TemplateVersion] = TTLCache(cache_size, ttl_s, timer)
        self._numbered: LRUCache[_Key, TemplateVersion] = LRUCache(cache_size)
        self._compiled: LRUCache[tuple[str, int], _Compiled] = LRUCache(cache_size)
        self._generation = 0
        self._unsubscribe: Callable[[], None] = store.subscribe(self._changed)

    @property
    def store(self) -> Store:
        """The store the templates live in."""
        return self._store

    @property
    def ttl_s(self) -> float:
        """Seconds a version read stays cached: the most a write unseen here stays unseen."""
        return self._ttl_s

    def close(self) -> None:
        """Stop following the store's changes (the caches then go stale; drop this object)."""
        self._unsubscribe()

    # -- writes ------------------------------------------------------------------------------

    async def create_version(self, new: NewTemplateVersion, *, actor: str = "system",
                             only_new: bool = False) -> TemplateVersion:
        """Check and store the next version of ``new.name`` (creating the template).

        Raises:
            TemplateSyntaxError: the prompt or system prompt does not compile.
            TemplateSchemaError: ``variables_schema`` is not a valid JSON Schema.
            ConflictError: ``only_new`` and the template exists (nothing is written).
        """
        compile_source(new.prompt, "prompt")
        if new.system is not None:
            compile_source(new.system, "system")
        if new.variables_schema is not None:
            _validator(new.variables_schema)
        return await self._store.create_template_version(new, actor=actor, only_new=only_new)

    async def set_label(self, name: str, label: str, version: int, *,
                        actor: str = "system") -> TemplateLabel:
        """Point ``label`` at ``version``; ``TemplateNotFoundError`` if there is none,
        ``ValueError`` for a label holding a NUL character (no backend's store could hold
        it: ``beamish.store.text``)."""
        _check_lookup(name, None)
        if NUL in label:
            raise ValueError(f"the label {label!r} {NUL_PROBLEM}")
        try:
            return await self._store.set_template_label(name, label, version, actor=actor)
        except NotFoundError as error:
            raise TemplateNotFoundError(str(error)) from error

    async def delete_label(self, name: str, label: str, *, actor: str = "system") -> None:
        """Remove ``label``; ``TemplateNotFoundError`` if the template has no such label."""
        _check_lookup(name, label)
        try:
            await self._store.delete_template_label(name, label, actor=actor)
        except NotFoundError as error:
            raise TemplateNotFoundError(str(error)) from error

    # -- reads -------------------------------------------------------------------------------

    async def summary(self, name: str) -> TemplateSummary:
        """The template's latest version and labels; ``TemplateNotFoundError`` if none."""
        _check_lookup(name, None)
        found = await self._store.get_template(name)
        if found is None:
            raise TemplateNotFoundError(_no_template(name))
        return found

    async def get(self, name: str, *, label: str | None = None,
                  version: int | None = None) -> TemplateVersion:
        """The version ``version``, else ``label``'s, else the served one (see the module docs).

        Raises:
            TemplateNotFoundError: no such template, version or label.
            ValueError: both ``label`` and ``version`` were given.
        """
        if label is not None and version is not None:
            raise ValueError("ask for a template version or a label, not both")
        _check_lookup(name, label)
        key: _Key = (name, "version", version) if version is not None else (name, "label", label)
        cache = self._numbered if version is not None else self._versions
        try:
            return cache[key]
        except KeyError:
            pass
        generation = self._generation
        found = await self._store.get_template_version(name, version=version, label=label)
        if found is None:
            raise TemplateNotFoundError(await self._missing(name, label, version))
        if generation == self._generation:
            cache[key] = found
        return found

    async def resolve_version(self, name: str, *, label: str | None = None,
                              version: int | None = None) -> int:
        """The version number ``get`` would answer."""
        return (await self.get(name, label=label, version=version)).version

    async def render(self, name: str, variables: Mapping[str, Any], *,
                     label: str | None = None, version: int | None = None) -> RenderedPrompt:
        """Render the template (see ``get`` for which version) with ``variables``.

        Raises:
            TemplateNotFoundError: no such template, version or label.
            TemplateVariablesError: the variables are too big, invalid under the version's
                schema, or lack one the template uses.
            TemplateRenderError: the sandbox refused the render.
        """
        found = await self.get(name, label=label, version=version)
        compiled = self._compile(found)
        _check_variables(found, compiled, variables)
        timeout = self._timeout

        def work() -> tuple[str, str | None]:
            prompt = render(compiled.prompt, variables, timeout=timeout)
            system = None if compiled.system is None else render(
                compiled.system, variables, timeout=timeout)
            return prompt, system

        try:
            prompt, system = await run_in_thread(work, timeout=timeout)
        except ThreadInterrupted:
            raise TemplateRenderError("too_slow", f"template {name!r} took longer than "
                                      f"{timeout:g} s to render; simplify its loops") from None
        except jinja2.UndefinedError as error:
            raise TemplateVariablesError(name, (str(error),)) from None
        return RenderedPrompt(template=name, version=found.version,
                              label=None if version is not None else label, prompt=prompt,
                              system=system, task_type=found.task_type,
                              output_format=found.output_format)

    # -- caches ------------------------------------------------------------------------------

    def _compile(self, found: TemplateVersion) -> _Compiled:
        key = (found.name, found.version)
        try:
            return self._compiled[key]
        except KeyError:
            pass
        compiled = _Compiled(
            compile_source(found.prompt, "prompt"),
            None if found.system is None else compile_source(found.system, "system"),
            None if found.variables_schema is None else _validator(found.variables_schema))
        self._compiled[key] = compiled
        return compiled

    def _changed(self, change: ConfigChange) -> None:
        # A store listener: runs in the writer's task once its transaction has ended.
        if isinstance(change, TemplateChanged):
            self._generation += 1
            for key in [k for k in self._versions if k[0] == change.name]:
                self._versions.pop(key, None)

    async def _missing(self, name: str, label: str | None, version: int | None) -> str:
        if await self._store.get_template(name) is None:
            return _no_template(name)
        if version is not None:
            return f"template {name!r} has no version {version}"
        return f"template {name!r} has no label {label!r}"


def _check_lookup(name: str, label: str | None) -> None:
    """``TemplateNotFoundError`` for a name or label with NUL, without asking the store:
    none can exist (they are refused when written), and PostgreSQL cannot even compare
    text with NUL — the store would fail where SQLite answers that there is none."""
    if NUL in name:
        raise TemplateNotFoundError(_no_template(name))
    if label is not None and NUL in label:
        raise TemplateNotFoundError(f"template {name!r} has no label {label!r}")


def _no_template(name: str) -> str:
    return f"template {name!r} does not exist; create it with its first version"


def _refuse_remote(uri: str) -> Any:
    raise ValueError(f"schemas are not fetched: {uri!r} must be inside the schema ($defs)")


def _validator(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """A validator of ``schema``; ``TemplateSchemaError`` if it is no valid JSON Schema."""
    if len(dumps(schema).encode()) > MAX_SCHEMA_BYTES:
        raise TemplateSchemaError(f"the variables schema is larger than {MAX_SCHEMA_BYTES} "
                                  "bytes of JSON")
    try:
        jsonschema_rs.meta.validate(dict(schema))
        return jsonschema_rs.validator_for(dict(schema), retriever=_refuse_remote)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as error:
        said = str(error).split("\n", 1)[0]
        raise TemplateSchemaError(f"the variables schema is not a valid JSON Schema: "
                                  f"{said}") from None


def _check_variables(found: TemplateVersion, compiled: _Compiled,
                     variables: Mapping[str, Any]) -> None:
    try:
        text = dumps(dict(variables))
    except (TypeError, ValueError, RecursionError) as error:
        raise TemplateVariablesError(found.name, (f"variables: not JSON ({error})",)) from None
    size = len(text.encode())
    if size > MAX_VARIABLES_BYTES:
        raise TemplateVariablesError(found.name, (
            f"variables: {size} bytes of JSON, more than the {MAX_VARIABLES_BYTES} allowed",))
    if compiled.validator is None:
        return
    problems = []
    for problem in compiled.validator.iter_errors(json.loads(text)):
        where = ".".join(str(p) for p in problem.instance_path) or "variables"
        problems.append(f"{where}: {problem.message[:200]}")
        if len(problems) == MAX_PROBLEMS:
            break
    if problems:
        raise TemplateVariablesError(found.name, tuple(problems))


__all__ = ["CACHE_SIZE", "CACHE_TTL_S", "MAX_PROBLEMS", "MAX_SCHEMA_BYTES", "MAX_VARIABLES_BYTES",
           "RenderedPrompt", "Templates"]
