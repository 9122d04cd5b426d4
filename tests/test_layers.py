"""Layers only point down: each top-level part of ``beamish`` imports only the parts below it.

The parts, bottom up (``beamish/__init__.py`` draws the same picture)::

    runtime, compact_json, _versions, migrations
    auth, request_log, channels, store, llm, templates
    sessions, jobs, settings
    application
    chat
    server
    web
    cli

Every import counts, also those under ``if TYPE_CHECKING:`` and those inside functions. One
import is not a statement, so it is not seen here: ``beamish.channels.__getattr__`` loads
``beamish.chat`` through ``importlib`` when a name that moved there (``ConversationChannel``,
``ConversationHistory``) is asked for, until the next release; the subprocess test below pins
that importing ``beamish.channels`` loads none of it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "beamish"

_BOTTOM = frozenset({"runtime", "compact_json", "_versions", "migrations"})
_LAYER_1 = frozenset({"auth", "request_log", "store"}) | _BOTTOM

ALLOWED: dict[str, frozenset[str]] = {
    "runtime": frozenset(),
    "compact_json": frozenset(),
    "_versions": frozenset(),  # installed versions, for the adapters of dependency internals
    "migrations": frozenset(),  # SQL files only; the store reads them as resources
    "auth": _BOTTOM,
    "request_log": _BOTTOM,
    "store": _BOTTOM,
    # Generic: no store, LLM, sessions or application; auth says who a socket speaks for.
    "channels": frozenset({"runtime", "auth", "compact_json"}),
    "llm": frozenset({"store", "runtime", "compact_json"}),
    # Prompt templates: stored in the store, rendered in a sandbox; no LLM, no sessions.
    "templates": frozenset({"store", "runtime", "compact_json"}),
    # sessions and settings share a layer: settings composes each part's table, the
    # sessions' included; sessions never reads the whole Settings.
    "sessions": _LAYER_1 | {"channels", "llm", "templates"},
    "settings": _LAYER_1 | {"channels", "llm", "sessions", "templates", "jobs"},
    "application": _LAYER_1 | {"channels", "llm", "sessions", "settings", "templates", "jobs"},
    "chat": frozenset({"channels", "sessions", "application", "llm", "store", "runtime",
                       "request_log", "templates", "jobs"}),
    "server": _LAYER_1 | {"channels", "llm", "sessions", "settings", "application", "chat",
                          "templates", "jobs"},
    "cli": _LAYER_1 | {"channels", "llm", "sessions", "settings", "application", "chat", "server",
                       "templates", "jobs", "web"},
    # Durable LLM jobs: below the application, which starts their tree and imports them.
    "jobs": _LAYER_1 | {"channels", "llm", "sessions", "templates"},
    # The web app's pages, served beside the HTTP API (which they call).
    "web": _LAYER_1 | {"channels", "llm", "sessions", "settings", "application", "chat",
                       "server", "templates", "jobs"},
    # The package's own __init__: lazy re-exports of the application's front names.
    "__init__": frozenset({"application", "settings"}),
}
"""For each top-level part of ``beamish``, the parts it may import (itself always)."""


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _part(module: str) -> str:
    """``beamish.channels.endpoint`` → ``channels``; the package itself → ``__init__``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def _imported(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every beamish import in ``path``, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from beamish import app`` imports the part ``app``.
            names = ([f"{base}.{alias.name}" for alias in node.names] if base == "beamish"
                     else [base])
        else:
            continue
        for name in names:
            if name == "beamish" or name.startswith("beamish."):
                yield node.lineno, name


def test_every_part_has_a_place_in_the_map() -> None:
    """A new top-level part of beamish must be placed in ALLOWED before it is imported."""
    parts = {_part(module) for module, _ in _modules()}
    assert parts - ALLOWED.keys() == set()


def test_each_part_imports_only_the_parts_below_it() -> None:
    """No module of beamish imports a part above its own (TYPE_CHECKING imports count)."""
    upward = []
    for module, path in _modules():
        part = _part(module)
        allowed = ALLOWED.get(part, frozenset()) | {part}
        for line, name in _imported(module, path):
            if name != "beamish" and _part(name) not in allowed:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert upward == []


_PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules
                        if m == "fastapi" or m.startswith((
                            "fastapi.", "beamish.server", "beamish.application",
                            "beamish.chat")))))
"""


@pytest.mark.parametrize("module", ["beamish.channels", "beamish.runtime"])
def test_generic_layers_load_neither_fastapi_nor_the_server(module: str) -> None:
    """Importing the channels or the runtime in a fresh interpreter loads no FastAPI, server,
    application or chat module."""
    probe = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)],
                           cwd=PACKAGE.parent, capture_output=True, text=True, timeout=60,
                           check=True)
    assert json.loads(probe.stdout) == []
