"""Tests do not depend on the checkout's state: its working directory or the shell's variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beamish.server.keyfile import ensure_secret_key
from beamish.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_runs_in_an_empty_directory_outside_the_checkout() -> None:
    """The working directory is empty and not the checkout (no beamish.toml, .beamish, db)."""
    cwd = Path.cwd().resolve()
    assert cwd != ROOT
    assert ROOT not in cwd.parents
    assert list(cwd.iterdir()) == []


def test_no_beamish_variable_but_the_test_runs_own() -> None:
    """BEAMISH_* variables of the developer's shell are cleared; BEAMISH_TEST_* are kept."""
    assert [n for n in os.environ
            if n.upper().startswith("BEAMISH_") and not n.startswith("BEAMISH_TEST_")] == []


def test_settings_and_key_file_see_defaults_only() -> None:
    """Settings() is the defaults and no key file is found: what a fresh machine sees."""
    assert Settings().database_url == "sqlite:///beamish.db"
    assert ensure_secret_key(create=False) is None


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_gets_a_fresh_directory(turn: int) -> None:
    """A file one test leaves in its working directory is not seen by the next."""
    assert not Path("left-behind").exists()
    Path("left-behind").write_text(str(turn))
