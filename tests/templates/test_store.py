"""The store's prompt templates: numbered versions, labels, events and audit, on both backends."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from beamish.auth.names import NAME_PATTERN
from beamish.store import (
    TEMPLATE_NAME_PATTERN,
    ConfigChange,
    ConflictError,
    GlobalConfig,
    NewTemplateVersion,
    NotFoundError,
    Store,
    TemplateChanged,
)
from beamish.store._templates import MAX_LABELS_PER_TEMPLATE

pytestmark = pytest.mark.anyio


def version(prompt: str = "Hello {{ name }}", name: str = "greet", **fields: object,
            ) -> NewTemplateVersion:
    return NewTemplateVersion.model_validate({"name": name, "prompt": prompt, **fields})


def test_template_names_follow_the_api_name_rule() -> None:
    """The store's template name pattern is the API's NAME_PATTERN, character for character."""
    assert TEMPLATE_NAME_PATTERN == NAME_PATTERN


def test_a_bad_template_name_or_format_is_refused_before_any_sql() -> None:
    """A name that is no path segment, or an unknown output format, fails validation."""
    with pytest.raises(ValidationError, match="name"):
        version(name="../etc")
    with pytest.raises(ValidationError, match="output_format"):
        version(output_format="pdf")


async def test_versions_are_numbered_from_one_by_the_database(store: Store) -> None:
    """The first version makes the template; each next one takes the next number."""
    first = await store.create_template_version(
        version(system="Be brief", task_type="summarize", output_format="json",
                variables_schema={"type": "object"}), actor="root")
    second = await store.create_template_version(version("Hi {{ name }}"))
    assert (first.version, second.version) == (1, 2)
    assert (first.system, first.task_type, first.output_format, first.created_by) == (
        "Be brief", "summarize", "json", "root")
    assert first.variables_schema == {"type": "object"}
    assert second.variables_schema is None
    got = await store.get_template_version("greet", version=1)
    assert got == first


async def test_concurrent_writers_get_distinct_numbers(store: Store) -> None:
    """Versions created at once are numbered 1..n, each number once."""
    made = await asyncio.gather(*(store.create_template_version(version(f"v{i}"))
                                  for i in range(8)))
    assert sorted(v.version for v in made) == list(range(1, 9))
    summary = await store.get_template("greet")
    assert summary is not None
    assert summary.latest_version == 8


async def test_without_production_the_latest_version_is_served(store: Store) -> None:
    """No production label: the default is the latest; with one, the label's version."""
    for prompt in ("one", "two", "three"):
        await store.create_template_version(version(prompt))
    served = await store.get_template_version("greet")
    assert served is not None
    assert served.prompt == "three"
    await store.set_template_label("greet", "production", 1)
    served = await store.get_template_version("greet")
    assert served is not None
    assert served.prompt == "one"
    labelled = await store.get_template_version("greet", label="production")
    assert labelled == served


async def test_a_label_moves_in_one_write_and_can_be_deleted(store: Store) -> None:
    """Setting a label again repoints it; deleting it makes it unknown."""
    await store.create_template_version(version("one"))
    await store.create_template_version(version("two"))
    await store.set_template_label("greet", "staging", 1)
    moved = await store.set_template_label("greet", "staging", 2)
    assert moved.version == 2
    summary = await store.get_template("greet")
    assert summary is not None
    assert summary.labels == {"staging": 2}
    await store.delete_template_label("greet", "staging")
    assert await store.get_template_version("greet", label="staging") is None
    with pytest.raises(NotFoundError, match="has no label 'staging'"):
        await store.delete_template_label("greet", "staging")


async def test_a_label_needs_an_existing_version(store: Store) -> None:
    """Pointing a label at a missing version or template says which is missing."""
    await store.create_template_version(version())
    with pytest.raises(NotFoundError, match="has no version 5; its versions are 1 to 1"):
        await store.set_template_label("greet", "production", 5)
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        await store.set_template_label("nope", "production", 1)


async def test_labels_per_template_are_bounded(store: Store) -> None:
    """A new label past the cap is a conflict; moving an existing one still works."""
    await store.create_template_version(version())
    for n in range(MAX_LABELS_PER_TEMPLATE):
        await store.set_template_label("greet", f"l{n}", 1)
    with pytest.raises(ConflictError, match="delete one first"):
        await store.set_template_label("greet", "one-too-many", 1)
    await store.set_template_label("greet", "l0", 1)


async def test_unknown_templates_read_as_none_and_list_empty(store: Store) -> None:
    """Reads of a template that does not exist find nothing."""
    assert await store.get_template_version("nope") is None
    assert await store.get_template_version("nope", version=1) is None
    assert await store.get_template("nope") is None
    assert await store.list_template_versions("nope") == []
    with pytest.raises(ValueError, match="not both"):
        await store.get_template_version("nope", version=1, label="production")


async def test_listing_shows_latest_versions_and_labels(store: Store) -> None:
    """Templates by name with their labels; versions newest first, bounded by limit."""
    for name in ("b", "a"):
        await store.create_template_version(version(name=name))
    await store.create_template_version(version("again", name="a"))
    await store.set_template_label("a", "production", 2)
    listed = await store.list_templates()
    assert [(t.name, t.latest_version, t.labels) for t in listed] == [
        ("a", 2, {"production": 2}), ("b", 1, {})]
    assert [t.name for t in await store.list_templates(limit=1)] == ["a"]
    assert [v.version for v in await store.list_template_versions("a")] == [2, 1]
    assert [v.version for v in await store.list_template_versions("a", limit=1)] == [2]


async def test_every_template_write_publishes_and_is_audited(store: Store) -> None:
    """Creating a version, moving and deleting a label: one TemplateChanged and audit each."""
    heard: list[ConfigChange] = []
    store.subscribe(heard.append)
    await store.create_template_version(version(), actor="root")
    await store.set_template_label("greet", "production", 1, actor="root")
    await store.set_template_label("greet", "production", 1, actor="root")
    await store.delete_template_label("greet", "production", actor="root")
    assert heard == [TemplateChanged("greet")] * 4
    audit = await store.list_audit()
    assert [(a.entity, a.entity_key, a.action, a.actor) for a in audit] == [
        ("template", "greet@production", "delete", "root"),
        ("template", "greet@production", "update", "root"),
        ("template", "greet@production", "create", "root"),
        ("template", "greet/v1", "create", "root")]
    assert audit[-1].after is not None
    assert audit[-1].after["prompt"] == "Hello {{ name }}"


async def test_a_global_config_names_its_template_and_label(store: Store) -> None:
    """The template fields round-trip through set, get, list and delete."""
    config = GlobalConfig(task_type="summarize", provider="echo", model="echo-1",
                          template="digest", template_label="staging")
    await store.set_global_config(config)
    assert await store.get_global_config("summarize") == config
    assert await store.list_global_configs() == [config]
    plain = GlobalConfig(task_type="summarize", provider="echo", model="echo-1")
    await store.set_global_config(plain)
    assert await store.get_global_config("summarize") == plain
    await store.delete_global_config("summarize")


async def test_only_new_refuses_an_existing_template_and_writes_nothing(store: Store) -> None:
    """The conflict rolls back the counter: the next version is still 2."""
    await store.create_template_version(version(), only_new=True)
    with pytest.raises(ConflictError, match="already exists"):
        await store.create_template_version(version("again"), only_new=True)
    made = await store.create_template_version(version("two"))
    assert made.version == 2
    assert [v.prompt for v in await store.list_template_versions("greet")] == [
        "two", "Hello {{ name }}"]
