"""``beamish.settings.Settings``: beamish.toml, BEAMISH_* variables, and which wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from beamish.settings import Settings


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty directory with no BEAMISH_* variables set."""
    for name in [n for n in os.environ if n.upper().startswith("BEAMISH_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_file_or_environment() -> None:
    """Nothing configured: the SQLite file, no secret key, the echo provider."""
    settings = Settings()
    assert settings.database_url == "sqlite:///beamish.db"
    assert settings.secret_key is None
    assert (settings.llm.default_provider, settings.llm.default_model) == ("echo", "echo-1")
    assert settings.config_file == Path("beamish.toml")


def test_reads_beamish_toml_in_the_working_directory(clean: Path) -> None:
    """Top-level keys and the [llm] table come from ./beamish.toml."""
    (clean / "beamish.toml").write_text(
        'database_url = "postgresql://db/beamish"\n'
        "[llm]\ndefault_provider = \"anthropic\"\ndefault_model = \"claude-sonnet\"\n")
    settings = Settings()
    assert settings.database_url == "postgresql://db/beamish"
    assert (settings.llm.default_provider, settings.llm.default_model) == (
        "anthropic", "claude-sonnet")


def test_environment_overrides_one_nested_key_and_keeps_the_rest(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEAMISH_LLM__TIMEOUT_S replaces the file's timeout; other [llm] keys stay."""
    (clean / "beamish.toml").write_text("[llm]\ntimeout_s = 30\ndefault_model = \"m\"\n"
                                        "default_provider = \"openai\"\n")
    monkeypatch.setenv("BEAMISH_LLM__TIMEOUT_S", "45")
    monkeypatch.setenv("BEAMISH_LLM__TASK_TYPES__CODE__PARAMETERS__TEMPERATURE", "0.1")
    settings = Settings()
    assert (settings.llm.timeout_s, settings.llm.default_model) == (45, "m")
    assert settings.llm.task_types["code"].parameters.temperature == 0.1
    assert "reasoning" in settings.llm.task_types


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constructor arguments are the highest source."""
    monkeypatch.setenv("BEAMISH_DATABASE_URL", "sqlite:///env.db")
    assert Settings(database_url="sqlite:///arg.db").database_url == "sqlite:///arg.db"
    assert Settings().database_url == "sqlite:///env.db"


def test_config_file_argument_names_another_file(clean: Path) -> None:
    """Settings(config_file=...) reads that file instead of ./beamish.toml."""
    (clean / "beamish.toml").write_text('database_url = "sqlite:///default.db"\n')
    other = clean / "conf" / "prod.toml"
    other.parent.mkdir()
    other.write_text('database_url = "sqlite:///prod.db"\n')
    settings = Settings(config_file=other)
    assert (settings.database_url, settings.config_file) == ("sqlite:///prod.db", other)


def test_config_file_variable_names_another_file(clean: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """BEAMISH_CONFIG_FILE names the file to read."""
    other = clean / "prod.toml"
    other.write_text("[llm]\nmax_retries = 9\n")
    monkeypatch.setenv("BEAMISH_CONFIG_FILE", str(other))
    assert Settings().llm.max_retries == 9


def test_a_named_file_that_does_not_exist_is_an_error(clean: Path) -> None:
    """A missing default file is fine; a missing named one says which and what to do."""
    with pytest.raises(FileNotFoundError, match=r"'missing.toml' does not exist; create it"):
        Settings(config_file=Path("missing.toml"))


def test_secret_key_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """BEAMISH_SECRET_KEY is held as a SecretStr and never shown in repr."""
    monkeypatch.setenv("BEAMISH_SECRET_KEY", "s3cr3t-master-key")
    settings = Settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "s3cr3t-master-key"
    assert "s3cr3t" not in repr(settings)


def test_unknown_keys_in_the_file_are_refused(clean: Path) -> None:
    """A typo in beamish.toml fails loudly instead of being ignored."""
    (clean / "beamish.toml").write_text("[llm]\ndefualt_model = \"x\"\n")
    with pytest.raises(ValidationError, match="defualt_model"):
        Settings()
