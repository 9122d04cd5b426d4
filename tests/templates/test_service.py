"""``Templates``: checks at creation, which version renders, variables, caching, the timeout."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from beamish.application import Application
from beamish.settings import Settings
from beamish.store import NewTemplateVersion, Store, open_store
from beamish.templates import (
    MAX_VARIABLES_BYTES,
    TemplateNotFoundError,
    TemplateRenderError,
    Templates,
    TemplateSchemaError,
    TemplateSyntaxError,
    TemplateVariablesError,
)
from beamish.templates.service import CACHE_TTL_S
from tests._clock import FakeClock

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "required": ["name", "count"],
          "properties": {"name": {"type": "string"}, "count": {"type": "integer"}}}


@pytest.fixture
async def templates(store: Store) -> AsyncIterator[Templates]:
    """A Templates over the fresh store, following its changes."""
    service = Templates(store, timeout=5.0)
    yield service
    service.close()


def new(prompt: str = "Hello {{ name }}", name: str = "greet", **fields: object,
        ) -> NewTemplateVersion:
    return NewTemplateVersion.model_validate({"name": name, "prompt": prompt, **fields})


async def test_a_render_carries_its_version_and_metadata(templates: Templates) -> None:
    """The rendered prompt and system prompt, with template, version, task and format."""
    await templates.create_version(new(system="You greet {{ name }}.", task_type="greeting",
                                       output_format="markdown"))
    rendered = await templates.render("greet", {"name": "ada"})
    assert rendered.model_dump() == {
        "template": "greet", "version": 1, "label": None, "prompt": "Hello ada",
        "system": "You greet ada.", "task_type": "greeting", "output_format": "markdown"}


async def test_version_label_and_default_choose_what_renders(templates: Templates) -> None:
    """Default is production, else latest; a label or a version picks exactly that one."""
    await templates.create_version(new("one"))
    await templates.create_version(new("two"))
    assert (await templates.render("greet", {})).prompt == "two"
    await templates.set_label("greet", "production", 1)
    await templates.set_label("greet", "staging", 2)
    assert (await templates.render("greet", {})).prompt == "one"
    staged = await templates.render("greet", {}, label="staging")
    assert (staged.prompt, staged.version, staged.label) == ("two", 2, "staging")
    pinned = await templates.render("greet", {}, version=2)
    assert (pinned.prompt, pinned.label) == ("two", None)
    assert await templates.resolve_version("greet") == 1
    with pytest.raises(ValueError, match="not both"):
        await templates.get("greet", label="staging", version=1)


async def test_unknown_template_version_and_label_say_which(templates: Templates) -> None:
    """Each miss is a TemplateNotFoundError naming what is missing."""
    with pytest.raises(TemplateNotFoundError, match="'nope' does not exist"):
        await templates.render("nope", {})
    await templates.create_version(new())
    with pytest.raises(TemplateNotFoundError, match="no version 9"):
        await templates.render("greet", {}, version=9)
    with pytest.raises(TemplateNotFoundError, match="no label 'beta'"):
        await templates.render("greet", {}, label="beta")
    with pytest.raises(TemplateNotFoundError, match="no version 9"):
        await templates.set_label("greet", "beta", 9)
    with pytest.raises(TemplateNotFoundError, match="no label 'beta'"):
        await templates.delete_label("greet", "beta")


async def test_a_version_must_compile_and_its_schema_be_a_schema(templates: Templates,
                                                                 store: Store) -> None:
    """Bad source or schema is refused before anything is stored."""
    with pytest.raises(TemplateSyntaxError, match=r"prompt template does not compile: .*at line 2"):
        await templates.create_version(new("ok\n{{ name "))
    with pytest.raises(TemplateSyntaxError, match="system template"):
        await templates.create_version(new(system="{% if %}"))
    with pytest.raises(TemplateSchemaError, match="not a valid JSON Schema"):
        await templates.create_version(new(variables_schema={"type": "bogus"}))
    with pytest.raises(TemplateSchemaError, match="not a valid JSON Schema"):
        await templates.create_version(new(variables_schema={
            "$ref": "http://example.invalid/schema.json"}))
    assert await store.list_templates() == []


async def test_variables_are_checked_against_the_schema_naming_each(
        templates: Templates) -> None:
    """Every missing or mistyped variable is named in one error."""
    await templates.create_version(new("{{ name }} x{{ count }}", variables_schema=SCHEMA))
    with pytest.raises(TemplateVariablesError) as caught:
        await templates.render("greet", {"count": "three"})
    assert caught.value.problems == ('variables: "name" is a required property',
                                     'count: "three" is not of type "integer"')
    assert (await templates.render("greet", {"name": "ada", "count": 3})).prompt == "ada x3"


async def test_a_missing_variable_without_a_schema_is_named(templates: Templates) -> None:
    """StrictUndefined's error becomes a TemplateVariablesError naming the variable."""
    await templates.create_version(new())
    with pytest.raises(TemplateVariablesError, match="'name' is undefined"):
        await templates.render("greet", {})


async def test_variables_are_bounded_in_size(templates: Templates) -> None:
    """Variables past MAX_VARIABLES_BYTES of JSON are refused before rendering."""
    await templates.create_version(new())
    with pytest.raises(TemplateVariablesError, match="more than the"):
        await templates.render("greet", {"name": "x" * MAX_VARIABLES_BYTES})


async def test_a_loop_without_calls_is_interrupted_and_the_next_render_works(
        store: Store) -> None:
    """Nested loops over a given list hit no sandbox check; the worker is interrupted."""
    templates = Templates(store, timeout=0.5)
    try:
        await templates.create_version(new(
            "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}", name="spin"))
        with pytest.raises(TemplateRenderError, match="took longer than") as caught:
            await templates.render("spin", {"xs": list(range(20_000))})
        assert caught.value.problem == "too_slow"
        for worker in threading.enumerate():
            if worker.name == "beamish-template-render":
                worker.join(timeout=5)
                assert not worker.is_alive()
        await templates.create_version(new())
        assert (await templates.render("greet", {"name": "ada"})).prompt == "Hello ada"
    finally:
        templates.close()


async def test_a_write_straight_to_the_store_is_seen_by_the_next_render(
        templates: Templates, store: Store) -> None:
    """New versions and label moves invalidate the cache through store events, at once."""
    await store.create_template_version(new("one"))
    assert (await templates.render("greet", {})).prompt == "one"
    await store.create_template_version(new("two"))
    assert (await templates.render("greet", {})).prompt == "two"
    await store.set_template_label("greet", "production", 1)
    assert (await templates.render("greet", {})).prompt == "one"
    await store.set_template_label("greet", "production", 2)
    assert (await templates.render("greet", {})).prompt == "two"
    await store.delete_template_label("greet", "production")
    await store.create_template_version(new("three"))
    assert (await templates.render("greet", {})).prompt == "three"


async def test_reads_are_cached_and_only_events_drop_them(templates: Templates,
                                                         store: Store) -> None:
    """A change of another template keeps the entry; unsubscribed, a change goes unseen."""
    await store.create_template_version(new("one"))
    await store.create_template_version(new("other", name="other"))
    assert (await templates.render("greet", {})).prompt == "one"
    await store.create_template_version(new("other two", name="other"))
    assert (await templates.render("other", {})).prompt == "other two"
    templates.close()
    await store.create_template_version(new("two"))
    assert (await templates.render("greet", {})).prompt == "one"


async def test_a_write_by_another_process_is_seen_once_the_ttl_has_passed(
        store: Store, store_url: str) -> None:
    """Two stores on one database: a label moved through one is seen through the other's
    Templates when its entry expires (ttl_s), not before; its own Templates see it at once."""
    clock = FakeClock()
    here = Templates(store, ttl_s=10, timer=clock)
    await here.create_version(new("one"))
    await here.create_version(new("two"))
    await here.set_label("greet", "production", 1)
    async with open_store(store_url) as other_store:
        there = Templates(other_store, ttl_s=10, timer=clock)
        try:
            assert (await there.render("greet", {})).prompt == "one"
            assert (await there.render("greet", {}, label="production")).prompt == "one"
            clock.advance(5)
            await here.set_label("greet", "production", 2)
            assert (await here.render("greet", {})).prompt == "two"
            clock.advance(4.5)
            assert (await there.render("greet", {})).prompt == "one"
            assert (await there.render("greet", {}, label="production")).prompt == "one"
            clock.advance(0.5)
            assert (await there.render("greet", {})).prompt == "two"
            assert (await there.render("greet", {}, label="production")).prompt == "two"
        finally:
            there.close()
            here.close()


async def test_a_numbered_version_stays_cached_past_the_ttl(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A numbered version never changes, so it is read from the store once; the served
    version (a label's, or the latest) is read again once its entry expires."""
    clock = FakeClock()
    templates = Templates(store, ttl_s=10, timer=clock)
    await templates.create_version(new("one"))
    reads: list[tuple[int | None, str | None]] = []
    read = store.get_template_version

    async def counted(name: str, *, version: int | None = None,
                      label: str | None = None) -> Any:
        reads.append((version, label))
        return await read(name, version=version, label=label)

    monkeypatch.setattr(store, "get_template_version", counted)
    try:
        for _ in range(2):
            assert (await templates.render("greet", {}, version=1)).prompt == "one"
            assert (await templates.render("greet", {})).prompt == "one"
            clock.advance(11)
    finally:
        templates.close()
    assert reads == [(1, None), (None, None), (None, None)]


async def test_the_ttl_must_be_positive(store: Store) -> None:
    """ttl_s of 0 or less is a ValueError; the default is CACHE_TTL_S (300 s)."""
    with pytest.raises(ValueError, match="more than 0"):
        Templates(store, ttl_s=0)
    service = Templates(store)
    service.close()
    assert service.ttl_s == CACHE_TTL_S == 300


async def test_the_application_caches_templates_for_llm_cache_ttl_s(tmp_path: Path) -> None:
    """Application.templates keeps versions as long as configs: llm.cache_ttl_s."""
    settings = Settings.model_validate({"database_url": f"sqlite:///{tmp_path}/app.db",
                                        "llm": {"cache_ttl_s": 7}})
    async with Application(settings) as rt:
        assert rt.templates.ttl_s == 7


async def test_the_application_serves_templates_over_its_store(tmp_path: Path) -> None:
    """Application.templates renders what its store holds, and is gone once it stops."""
    app = Application(Settings(database_url=f"sqlite:///{tmp_path}/app.db"))
    async with app as rt:
        await rt.templates.create_version(new())
        assert (await rt.templates.render("greet", {"name": "ada"})).prompt == "Hello ada"
    with pytest.raises(RuntimeError, match="not running"):
        _ = app.templates


async def test_a_template_with_nul_is_refused_and_a_nul_name_is_found_nowhere(
        templates: Templates) -> None:
    """Sources with NUL are refused before the store (PostgreSQL cannot hold them, SQLite
    would); a label with NUL is refused, and a read or a label's removal naming a
    template or label with NUL is not found — on both backends alike."""
    refused: list[dict[str, Any]] = [{"prompt": "Hi\x00"}, {"system": "\x00"},
                                     {"variables_schema": {"properties": {"n\x00": {}}}}]
    for fields in refused:
        with pytest.raises(ValueError, match=r"holds a NUL character \(U\+0000\)"):
            new(**fields)
    await templates.create_version(new())
    with pytest.raises(ValueError, match=r"holds a NUL character \(U\+0000\)"):
        await templates.set_label("greet", "prod\x00", 1)
    for name, label in (("greet\x00", None), ("greet", "prod\x00")):
        with pytest.raises(TemplateNotFoundError):
            await templates.render(name, {"name": "ada"}, label=label)
    with pytest.raises(TemplateNotFoundError):
        await templates.summary("greet\x00")
    with pytest.raises(TemplateNotFoundError):
        await templates.set_label("greet\x00", "prod", 1)
    with pytest.raises(TemplateNotFoundError):
        await templates.delete_label("greet", "prod\x00")
    assert (await templates.summary("greet")).labels == {}
