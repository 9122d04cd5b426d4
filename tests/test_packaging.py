"""What the packages hold: the library and ``py.typed``; never a database or a key.

``beamish serve`` leaves ``beamish.db`` (and its ``-wal``/``-shm`` files) and
``.beamish/secret_key`` in the directory it runs in, often the checkout. The sdist and the
wheel are built here with the real backend (hatchling, offline) from a copy of the project
with those files planted, and then read.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Files a served checkout holds that no package may carry.
LEFT_BY_SERVE = ("beamish.db", "beamish.db-wal", "beamish.db-shm", ".beamish/secret_key",
                 "beamish/beamish.db", "beamish.toml", "usage.sqlite3")

pytest.importorskip("hatchling", reason="the packaging tests build with hatchling")


def _served_copy(where: Path) -> Path:
    project = where / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "beamish", project / "beamish",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in LEFT_BY_SERVE:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("not for packaging\n")
    return project


def _build(project: Path, kind: str) -> Path:
    code = (f"from hatchling.build import build_{kind}; "
            f"print(build_{kind}('dist'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return project / "dist" / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The names in the sdist and in the wheel built from a served checkout."""
    project = _served_copy(tmp_path_factory.mktemp("packaging"))
    with tarfile.open(_build(project, "sdist")) as sdist:
        sdist_names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    with zipfile.ZipFile(_build(project, "wheel")) as wheel:
        wheel_names = wheel.namelist()
    return {"sdist": sdist_names, "wheel": wheel_names}


@pytest.mark.parametrize("kind", ["sdist", "wheel"])
def test_no_database_or_key_is_packaged(packages: dict[str, list[str]], kind: str) -> None:
    """No SQLite file, generated key or local beamish.toml ends up in the package."""
    names = packages[kind]
    assert "beamish/cli.py" in names
    leaked = [n for n in names
              if n in LEFT_BY_SERVE or ".beamish/" in n or n.endswith((".db", ".sqlite3"))
              or ".db-" in n]
    assert leaked == []


def test_the_wheel_ships_py_typed_and_the_docs_assets(packages: dict[str, list[str]]) -> None:
    """Type checkers see beamish's annotations (PEP 561); /docs has its files and licence."""
    assert "beamish/py.typed" in packages["wheel"]
    assets = "beamish/server/api/static/swagger-ui/"
    assert {f"{assets}swagger-ui-bundle.js", f"{assets}swagger-ui.css",
            f"{assets}LICENSE"} <= set(packages["wheel"])


def test_git_ignores_what_serve_leaves() -> None:
    """beamish.db, its -wal/-shm files and .beamish/ are ignored by git in the checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["beamish.db", "beamish.db-wal", "beamish.db-shm", ".beamish/secret_key"]
    done = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    assert sorted(done.stdout.split()) == sorted(paths)


def test_the_wheel_ships_the_web_apps_templates_and_static_files(
        packages: dict[str, list[str]]) -> None:
    """The web app's Jinja2 templates, ES modules and stylesheet are in the wheel."""
    names = set(packages["wheel"])
    assert {"beamish/web/templates/base.html", "beamish/web/templates/chat.html",
            "beamish/web/templates/settings.html", "beamish/web/static/phoenix.js",
            "beamish/web/static/chat.js", "beamish/web/static/markdown.js",
            "beamish/web/static/app.css"} <= names
