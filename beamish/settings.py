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
* ``server`` — :class:`ServerSettings`, below (host, port, socket limits).
* ``jobs`` — ``beamish.jobs.settings.JobsSettings`` (queues, leases, retries, pruning).

Each later part of beamish adds its own table here as one more field. A part below this
module keeps its table's model in its own ``settings`` module (``beamish.llm.settings``,
``beamish.sessions.settings``); the ``[server]`` table's model is here, since
``beamish.server`` sits above this module and the API reads these settings.

``[server]`` in ``beamish.toml`` or ``BEAMISH_SERVER__*`` variables (:class:`ServerSettings`),
options with their defaults in brackets:

* ``host`` ["127.0.0.1"], ``port`` [4000] — where ``beamish serve`` listens.
* ``dev_mode`` [False] — also trust a ``user_id`` param from callers without a token; only
  allowed when ``host`` is a loopback address, and announced loudly at start.
* ``idle_timeout_s`` [60] — a socket that sends no frame for this long is closed (1001).
* ``max_channels`` [100] — channels one socket may join.
* ``max_frame_bytes`` [1 MiB] — larger frames close the socket with 1009.
* ``outbound_frames`` [1024], ``outbound_bytes`` [8 MiB] — a client that falls this far behind
  is disconnected as a slow consumer (1008); its usage is still recorded.
* ``message_rate_per_s`` [10], ``message_burst`` [20] — each user's channel messages (a token
  bucket shared by all of the user's sockets); beyond it the reply is ``rate_limited``.
* ``max_history`` [50] — messages kept per conversation (and sent to the provider).
* ``max_conversations`` [10_000] — conversations whose history is kept (least recent dropped).
* ``shutdown_timeout_s`` [10] — the deadline of the whole stop (SIGTERM): sockets, requests
  in flight and usage still to write; usage not written by then is reported lost by count.
* ``request_log`` [True] — ``beamish serve`` logs one JSON line per LLM request (INFO on
  ``beamish.server.llm_requests``; see ``beamish.request_log``); False leaves them out.
* ``keep_alive_timeout_s`` [5] — an HTTP connection idle this long after a response is closed.
* ``header_timeout_s`` [10] — a new connection must send its first complete request head
  (or WebSocket upgrade) within this; otherwise it is closed (408 if it sent part of one).
* ``handshake_timeout_s`` [10] — a WebSocket upgrade must be answered within this of
  connecting; after that the socket's ``idle_timeout_s`` applies.
* ``max_connections`` [10_000] — connections open at once; at most what leaves the process
  an eighth of its file-descriptor limit (and 64) for everything else. ``beamish serve``
  raises the soft limit to the hard one at start and logs it.
* ``max_connections_per_ip`` [256] — connections open at once from one client address; 0
  for no cap (behind a reverse proxy, where every client has the proxy's address).
  Connections over either cap are closed as they are accepted.
* ``shortage_log_interval_s`` [10] — refused connections and failed ``accept()`` calls are
  logged at most once per interval, with their count.
* ``log_format`` ["text"] — ``json`` writes every log line as one JSON object
  (``beamish.server.logging_json``; ``beamish serve --log-format json``).
* ``metrics_public`` [False] — serve ``/metrics`` without a token (else admin only).
* ``max_sockets_per_user`` [100] — sockets one user may hold open (one more gets HTTP 429).
* ``max_conversations_per_user`` [100] — conversations of one user whose history is kept
  (that user's least recent dropped).
* ``max_history_bytes`` [64 MiB] — bytes of every conversation's history together (least
  recent conversations dropped); one conversation keeps at most 256 KiB.
* ``max_body_bytes`` [4 MiB] — a larger HTTP request body is answered 413, unread.
* ``max_json_depth`` [32], ``max_string_chars`` [1_000_000], ``max_array_items`` [1000] — a
  JSON body nested deeper, with a longer string (a message's content) or a longer array (the
  messages of a call) is answered 422 naming the field (``beamish.server.api.limits``).
* ``max_metadata_bytes`` [64 KiB] — the JSON of a stored free-form object (a provider
  config's ``metadata``), which every read returns; larger is a 422 naming it.
* ``max_stored_messages`` [1000], ``max_stored_chars`` [4_000_000] — messages and characters
  one stored conversation may hold; a question beyond them is refused with
  ``conversation_full`` (start a new conversation). ``max_stored_conversations_per_user``
  [1000] — stored conversations of one user; a new one beyond it is refused
  (``beamish.chat.history``).
* ``event_loop`` ["auto"] — the event loop ``beamish serve`` runs on: ``uvloop`` (an
  installed dependency where it builds; fewer cycles per socket read and write),
  ``asyncio`` (the standard library's), or ``auto``: uvloop when it can be imported, else
  asyncio. An application embedding beamish runs on its own loop.

Checks made at start, before anything is served (each raises a :class:`SettingsError`
saying what to do): :func:`check_secret_key` (the master key must be Fernet keys),
:func:`check_sqlite_path` (a SQLite file's directory must exist, but ``.beamish/``). A
``beamish.toml`` that is not valid TOML is a :class:`ConfigFileError` naming the file.

Errors::

    ValueError
    └── SettingsError               a setting cannot be used; the message says how to fix it
                                    (raised as such by load_settings for invalid values)
        ├── ConfigFileError         the TOML file cannot be parsed (names the file and line)
        ├── InvalidSecretKeyError   BEAMISH_SECRET_KEY missing or not Fernet keys
        └── DatabasePathError       a SQLite file's directory does not exist
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from beamish.jobs.settings import JobsSettings
from beamish.llm.settings import LLMSettings
from beamish.sessions.settings import SessionSettings
from beamish.store.errors import SecretKeyError
from beamish.store.secrets import SecretBox

DEFAULT_CONFIG_FILE = Path("beamish.toml")
CONFIG_FILE_ENV = "BEAMISH_CONFIG_FILE"


class ServerSettings(BaseModel):
    """How ``beamish serve`` listens and what each connection may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    dev_mode: bool = False
    idle_timeout_s: float = Field(default=60.0, gt=0)
    max_channels: int = Field(default=100, ge=1)
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbound_frames: int = Field(default=1024, ge=1)
    outbound_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    message_rate_per_s: float = Field(default=10.0, gt=0)
    message_burst: int = Field(default=20, ge=1)
    max_history: int = Field(default=50, ge=1)
    max_conversations: int = Field(default=10_000, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    request_log: bool = True
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)
    handshake_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=10_000, ge=1)
    max_connections_per_ip: int = Field(default=256, ge=0)
    shortage_log_interval_s: float = Field(default=10.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    metrics_public: bool = False
    max_sockets_per_user: int = Field(default=100, ge=1)
    max_conversations_per_user: int = Field(default=100, ge=1)
    max_history_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=4)
    max_string_chars: int = Field(default=1_000_000, ge=256)
    max_array_items: int = Field(default=1000, ge=16)
    max_metadata_bytes: int = Field(default=64 * 1024, ge=256)
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    max_stored_messages: int = Field(default=1000, ge=2)
    max_stored_chars: int = Field(default=4_000_000, ge=1024)
    max_stored_conversations_per_user: int = Field(default=1000, ge=1)


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
    jobs: JobsSettings = Field(default_factory=JobsSettings)

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
        path = _config_file(init_settings)
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as error:
            raise ConfigFileError(f"{path} is not valid TOML: {error}") from None
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


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)``; a value that does not validate is a :class:`SettingsError`
    naming the file and the variables it may come from, each problem on one line, without
    the values (which may be secrets)."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        config_file = overrides.get("config_file") or os.environ.get(CONFIG_FILE_ENV) \
            or DEFAULT_CONFIG_FILE
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in error.errors())
        raise SettingsError(f"invalid settings (from {config_file}, BEAMISH_* variables or "
                            f"options): {problems}") from None


class SettingsError(ValueError):
    """A setting beamish cannot start with; the message says what was wrong and what to do."""


class ConfigFileError(SettingsError):
    """The configuration file cannot be parsed; the message names it."""


class InvalidSecretKeyError(SettingsError):
    """``BEAMISH_SECRET_KEY`` is missing, or not one or more comma-separated Fernet keys."""


class DatabasePathError(SettingsError):
    """A SQLite database's directory does not exist (a typo, most often)."""


#: How to make a master key, quoted in the errors about it.
MAKE_SECRET_KEY: Final = ('python -c "from cryptography.fernet import Fernet; '
                          'print(Fernet.generate_key().decode())"')

#: A missing directory a SQLite file may still be created in: beamish's own.
CREATED_DIRECTORIES: Final = frozenset({Path(".beamish")})


def check_secret_key(keys: str | None, *, source: str = "BEAMISH_SECRET_KEY") -> None:
    """Raise :class:`InvalidSecretKeyError` unless ``keys`` are comma-separated Fernet keys.

    The master key signs tokens and encrypts provider API keys; a key Fernet refuses would
    serve until the first provider key is stored, then fail every such request.
    """
    if not keys or not keys.strip():
        raise InvalidSecretKeyError(f"{source} is not set; make a key with {MAKE_SECRET_KEY}")
    try:
        SecretBox(keys)
    except SecretKeyError:
        raise InvalidSecretKeyError(
            f"{source} is not a Fernet key (32 url-safe base64-encoded bytes; several may be "
            f"separated by commas); make one with {MAKE_SECRET_KEY}") from None


def check_sqlite_path(database_url: str) -> None:
    """Raise :class:`DatabasePathError` if a ``sqlite:///`` URL's directory does not exist.

    The store would create it, so a typo (``sqlite:///dta/beamish.db``) would quietly start a
    new, empty database elsewhere. Only beamish's own ``.beamish/`` may be created. Other
    URLs pass.
    """
    if not database_url.startswith("sqlite:///"):
        return
    path = Path(database_url.removeprefix("sqlite:///"))
    parent = path.parent
    if parent in CREATED_DIRECTORIES or parent.is_dir():
        return
    raise DatabasePathError(
        f"the directory {str(parent)!r} of the SQLite database {str(path)!r} does not exist; "
        f"create it (mkdir -p {parent}) or correct the database URL")
