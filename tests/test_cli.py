"""The ``beamish`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamish.cli import main


def test_migrate_applies_then_reports_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`beamish migrate` applies the migrations once, then says it is up to date."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--url", url]) == 0
    assert capsys.readouterr().out.split() == [
        "applied", "initial", "applied", "ledger_integer_time", "applied", "usage_count_trigger",
        "applied", "api_tokens"]
    assert main(["migrate", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == "already up to date"


def test_migrate_rejects_an_unknown_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad URL gives exit status 1 and an error naming it, not a traceback."""
    assert main(["migrate", "--url", "mysql://nope"]) == 1
    assert "mysql" in capsys.readouterr().err
