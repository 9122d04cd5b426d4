"""The ``beamish`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beamish.cli import main, table_lines


def test_migrate_applies_then_reports_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`beamish migrate` applies the migrations once, then says it is up to date."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--url", url]) == 0
    assert capsys.readouterr().out.split() == [
        "applied", "initial", "applied", "ledger_integer_time", "applied", "usage_count_trigger",
        "applied", "api_tokens", "applied", "templates", "applied", "jobs",
        "applied", "conversations", "applied", "job_unique_key_per_user"]
    assert main(["migrate", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == "already up to date"


def test_migrate_rejects_an_unknown_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad URL gives exit status 1 and an error naming it, not a traceback."""
    assert main(["migrate", "--url", "mysql://nope"]) == 1
    assert "mysql" in capsys.readouterr().err


# -- one Settings for every command; arguments checked before anything runs -------------------

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_reads_database_url_from_beamish_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """migrate, config and usage open the database beamish.toml names, as serve does."""
    db = tmp_path / "from-toml.db"
    Path("beamish.toml").write_text(f'database_url = "sqlite:///{db}"\n')
    assert main(["migrate"]) == 0
    assert db.is_file()
    assert not Path("beamish.db").exists()
    assert main(["config", "set", "--user", "ada", "--provider", "echo", "--model", "e"]) == 0
    capsys.readouterr()
    assert main(["config", "get", "--user", "ada"]) == 0
    assert "stored: echo:e (default)" in capsys.readouterr().out


def test_database_url_is_one_name_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--database-url on every command that opens the database; --url still works, hidden."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    for command in (["migrate"], ["usage"], ["config", "get", "--user", "ada"]):
        assert main([*command, "--database-url", url]) == 0, command
        assert main([*command, "--url", url]) == 0, command
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["usage", "--help"])
    shown = capsys.readouterr().out
    assert "--database-url" in shown
    assert "--url" not in shown.replace("--database-url", "")


@pytest.mark.parametrize("argv", [
    ["serve", "--port", "99999"], ["serve", "--port", "-1"], ["serve", "--port", "http"],
    ["usage", "--days", "0"], ["usage", "--top", "-3"], ["token", "create", "--user", "ada",
                                                        "--expires-in", "nan"],
    ["config", "set", "--provider", "echo", "--model", "m", "--user", ""],
    ["config", "set", "--user", "ada", "--provider", "echo", "--model", " "],
    ["config", "get", "--user", "ada", "--task", "no spaces"],
    ["usage", "--user", "u" * 256]])
def test_out_of_range_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An impossible port, window or lifetime: argparse's status 2 and the reason, nothing run."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}" in err
    assert "Traceback" not in err


def test_a_malformed_beamish_toml_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """TOML that does not parse: status 1 and an error naming the file and the line."""
    Path("beamish.toml").write_text("[llm\ndefault_model = 'x'\n")
    assert main(["config", "get", "--user", "ada"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("beamish config: beamish.toml is not valid TOML")
    assert "line 1" in err


def test_an_unknown_provider_lists_the_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """config set --provider bogus names the provider kinds, never the SQL constraint."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["config", "set", "--user", "ada", "--provider", "bogus", "--model", "m",
                 "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("beamish config: unknown provider 'bogus'; use one of: openai,")
    assert "CHECK" not in err
    assert "constraint" not in err


@pytest.mark.parametrize("argv", [["token", "create", "--user", "ada"],
                                  ["serve", "--port", "0"], ["sessions"]])
def test_a_non_fernet_secret_key_is_refused_at_start(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key Fernet refuses stops the command before it starts, saying how to make one."""
    monkeypatch.setenv("BEAMISH_SECRET_KEY", "a-long-enough-signing-key-but-not-fernet")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "BEAMISH_SECRET_KEY is not a Fernet key" in captured.err
    assert "Fernet.generate_key().decode()" in captured.err
    assert "serving" not in captured.out


def test_a_broken_key_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """A hand-edited .beamish/secret_key is refused, naming the file."""
    Path(".beamish").mkdir()
    Path(".beamish/secret_key").write_text("oops\n")
    assert main(["token", "create", "--user", "ada"]) == 1
    assert "the key in .beamish/secret_key is not a Fernet key" in capsys.readouterr().err


def test_a_missing_database_directory_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo'd SQLite directory is an error saying what to do; nothing is created."""
    assert main(["migrate", "--database-url", "sqlite:///dta/beamish.db"]) == 1
    err = capsys.readouterr().err
    assert "the directory 'dta' of the SQLite database 'dta/beamish.db' does not exist" in err
    assert "mkdir -p dta" in err
    assert not Path("dta").exists()
    assert main(["migrate", "--database-url", "sqlite:///.beamish/beamish.db"]) == 0
    assert Path(".beamish/beamish.db").is_file()


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """beamish --version prints the version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("beamish ")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`beamish usage | head -1`: the reader goes away, and nothing is printed on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "usage", "--database-url",
         f"sqlite:///{tmp_path / 'u.db'}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()  # before the command writes anything: every write finds no reader
    _, err = process.communicate(timeout=60)
    assert err == ""
    assert process.returncode == 1


def test_tables_align_every_column() -> None:
    """Text columns are left-aligned whatever their first character; numbers right-aligned."""
    lines = table_lines(["session", "user", "requests"],
                        [["0f3a", "ada", 1200], ["s-long-id", "b", 3]])
    assert lines == [
        "session    user  requests",
        "---------  ----  --------",
        "0f3a       ada      1,200",
        "s-long-id  b            3",
    ]


def test_an_invalid_setting_names_where_settings_come_from(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt key in beamish.toml: one line naming the file and the key, not a dump."""
    Path("beamish.toml").write_text('[llm]\ndefualt_model = "secret-ish"\n')
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("beamish migrate: invalid settings (from beamish.toml, BEAMISH_*")
    assert "llm.defualt_model: Extra inputs are not permitted" in err
    assert "secret-ish" not in err
    assert err.count("\n") == 1
