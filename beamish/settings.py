"""beamish's configuration: ``beamish.toml`` overridden by ``BEAMISH_*`` environment variables.

Sources, highest first: arguments to ``Settings(...)``, environment variables, the TOML file.
Variables are ``BEAMISH_`` plus the field name, with ``__`` between nested names::

    BEAMISH_DATABASE_URL=postgresql://beamish@db/beamish
    BEAMISH_SECRET_KEY=...                                     # master key for API keys at rest
    BEAMISH_LLM__DEFAULT_MODEL=claude-sonnet-4                 # [llm] default_model
    BEAMISH_LLM__TASK_TYPES__CODE__PARAMETERS__TIMEOUT_S=90    # nested tables too

Nested values from different sources are merged, so a variable overrides one key of the
file's ``[llm]`` table and keeps the rest. The file is ``beamish.toml`` in the working
directory, or the one named by ``Settings(config_file=...)`` or ``BEAMISH_CONFIG_FILE``; the
default file may be missing, a named one must exist.

Fields and their defaults:

* ``database_url`` — ``sqlite:///beamish.db`` (see ``beamish.store.open_store``).
* ``secret_key`` — None: the Fernet master key that encrypts provider API keys in the store.
* ``llm`` — ``beamish.llm.settings.LLMSettings`` (system defaults, task types, tiers, cache).
* ``sessions`` — ``beamish.sessions.settings.SessionSettings`` (TTL, limits, usage buffer).
* ``server`` — ``beamish.server.settings.ServerSettings`` (host, port, socket limits).

Each later part of beamish adds its own table here as one more field.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from beamish.llm.settings import LLMSettings
from beamish.server.settings import ServerSettings
from beamish.sessions.settings import SessionSettings

DEFAULT_CONFIG_FILE = Path("beamish.toml")
CONFIG_FILE_ENV = "BEAMISH_CONFIG_FILE"


class Settings(BaseSettings):
    """Everything beamish reads from its configuration file and environment."""

    model_config = SettingsConfigDict(env_prefix="BEAMISH_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    config_file: Path = Field(default=DEFAULT_CONFIG_FILE,
                              description="the TOML file read (BEAMISH_CONFIG_FILE)")
    database_url: str = "sqlite:///beamish.db"
    secret_key: SecretStr | None = None
    llm: LLMSettings = Field(default_factory=LLMSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the TOML file (no dotenv, no secrets dir)."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file(init_settings))
        return init_settings, env_settings, toml


def _config_file(init_settings: PydanticBaseSettingsSource) -> Path:
    named = None
    if isinstance(init_settings, InitSettingsSource):
        named = init_settings.init_kwargs.get("config_file")
    named = named or os.environ.get(CONFIG_FILE_ENV)
    if not named:
        return DEFAULT_CONFIG_FILE
    path = Path(named)
    if not path.is_file():
        raise FileNotFoundError(
            f"beamish config file {str(path)!r} does not exist; create it, or drop "
            f"config_file / {CONFIG_FILE_ENV} to use {DEFAULT_CONFIG_FILE} if present")
    return path
