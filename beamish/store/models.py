"""The pydantic models that cross the store boundary.

Inputs are validated here, before any SQL runs, so a bad temperature or an unknown provider
fails with a pydantic ``ValidationError`` at the caller. The database repeats the important
rules as constraints (defence in depth). Outputs are built from rows of either backend: JSON
columns arrive as text from both drivers and are parsed by ``JsonDict``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from beamish.store.text import NO_NUL, REPLACE_NUL, TextObject

Provider = Literal["openai", "anthropic", "ollama", "tgi", "openai_compatible", "echo"]
"""The LLM providers beamish can talk to."""

UsageStatus = Literal["ok", "error", "cancelled"]
"""How an LLM request ended."""

ANY_TIER = "*"
"""The tier of a global config that applies to every tier without its own entry."""

Name = Annotated[str, Field(min_length=1, max_length=255), NO_NUL]
"""A name (a user, a model, a task type): 1 to 255 characters, no NUL (``beamish.store.text``)."""

ReportedName = Annotated[str, Field(min_length=1, max_length=255), REPLACE_NUL]
"""A name a provider reported (the model that served a request): a NUL in it is replaced by
U+FFFD, not refused — nobody can send it again, and the usage must be recorded."""

TEMPLATE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
"""Template names and labels: the rule of ``beamish.auth.names.NAME_PATTERN`` (a test pins
that they agree), so each is a safe URL path segment; the store sits below ``auth``."""

TemplateName = Annotated[str, Field(pattern=TEMPLATE_NAME_PATTERN)]


def _parse_json(value: Any) -> Any:
    # Both drivers hand JSON columns back as text; callers pass dicts.
    return json.loads(value) if isinstance(value, str | bytes) else value


JsonDict = Annotated[dict[str, Any], BeforeValidator(_parse_json)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LLMParameters(_Model):
    """Sampling and transport parameters; unset fields fall back to wider defaults."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    timeout_s: float | None = Field(default=None, ge=1, le=300)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    fallback_models: tuple[Name, ...] = ()

    def to_json(self) -> str:
        """The parameters as compact JSON, unset fields left out."""
        return self.model_dump_json(exclude_defaults=True)


Parameters = Annotated[LLMParameters, BeforeValidator(_parse_json)]


class UserProfile(_Model):
    """Who a user is to beamish: a tier and high-level LLM preferences."""

    user_id: Name
    tier: Name = "free"
    llm_preferences: JsonDict = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class NewLLMConfig(_Model):
    """A provider config to add for a user."""

    provider: Provider
    model: Name
    is_default: bool = False
    parameters: LLMParameters = LLMParameters()
    metadata: TextObject = Field(default_factory=dict)


class UserLLMConfig(_Model):
    """One provider config of a user, with how often it has been used."""

    id: UUID
    user_id: Name
    provider: Provider
    model: Name
    is_default: bool
    usage_count: int
    parameters: Parameters
    metadata: JsonDict
    created_at: datetime
    updated_at: datetime


class TaskOverride(_Model):
    """A user's choice of provider and model for one task type (e.g. ``summarize``)."""

    task_type: Name
    provider: Provider
    model: Name
    parameters: Parameters = LLMParameters()


class ProviderRecord(_Model):
    """A registered provider endpoint. The API key is held only as ciphertext.

    ``api_key_ciphertext`` is excluded from ``repr`` so it does not land in logs; encrypt and
    decrypt with ``beamish.store.secrets.SecretBox``.
    """

    name: Name
    kind: Provider
    base_url: str | None = None
    api_key_ciphertext: bytes | None = Field(default=None, repr=False)
    enabled: bool = True
    validated_at: datetime | None = None


class ProviderModel(_Model):
    """One model a provider offers, as discovered from its API."""

    provider: Name
    model: Name
    context_window: int | None = Field(default=None, gt=0)
    discovered_at: datetime


class GlobalConfig(_Model):
    """The system-wide provider and model for a task type, optionally per tier.

    ``template`` names the prompt template the task uses (``beamish.templates``) and
    ``template_label`` the label served (``production`` when unset); both optional.
    """

    task_type: Name
    tier: Name = ANY_TIER
    provider: Provider
    model: Name
    parameters: Parameters = LLMParameters()
    template: TemplateName | None = None
    template_label: TemplateName | None = None


class UserLLMLayers(_Model):
    """What config resolution reads about one user and task type, read in one query."""

    profile: UserProfile | None
    configs: tuple[UserLLMConfig, ...] = ()
    task_override: TaskOverride | None = None


class AuditEntry(_Model):
    """Who changed which config, and what it looked like before and after."""

    actor: str
    user_id: str | None
    entity: str
    entity_key: str
    action: Literal["create", "update", "delete"]
    before: JsonDict | None
    after: JsonDict | None
    created_at: datetime


class _Entropy:
    """``os.urandom`` read 4 KiB at a time: one system call per 256 request ids, not one each.

    The bytes are the OS's either way. A forked child drops what it inherited, so parent and
    child never hand out the same ids.
    """

    __slots__ = ("_at", "_data", "_lock")

    SIZE = 4096

    def __init__(self) -> None:
        self._data = b""
        self._at = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._data):
                self._data, at = os.urandom(self.SIZE), 0
            self._at = at + n
            return self._data[at:at + n]

    def forget(self) -> None:
        self._data, self._at, self._lock = b"", 0, threading.Lock()


_ENTROPY = _Entropy()
os.register_at_fork(after_in_child=_ENTROPY.forget)


def new_request_id() -> str:
    """A new request id (``UsageEvent.request_id``): the 32 hex digits of a UUIDv7.

    The first 48 bits are the Unix time in milliseconds, then the version (7), 74 random bits
    from the OS and the variant: as unguessable as anyone needs a request id to be, and in
    the order the ids were made. The ledger keeps a unique index of them, and time-ordered
    keys go into its last pages, where random ones land on a different page each: a group
    commit of 50 usage rows wrote 118 pages to SQLite's log with random ids, 60 with these.
    The randomness is read in bulk (a system call each cost more than the rest of the id).
    """
    random = int.from_bytes(_ENTROPY.take(10))  # 80 bits, 6 of them replaced below
    value = (time.time_ns() // 1_000_000) << 80 | random
    return f"{value & _UUID7_CLEAR | _UUID7_SET:032x}"


# The version (bits 76-79: 7) and the variant (bits 62-63: 0b10) of RFC 9562.
_UUID7_SET: Final = 0x7 << 76 | 0x2 << 62
_UUID7_CLEAR: Final = ~(0xF << 76 | 0x3 << 62)


class UsageEvent(_Model):
    """One finished LLM request. ``request_id`` makes recording it idempotent."""

    request_id: Name
    session_id: str | None = None
    user_id: Name
    provider: Provider
    model: ReportedName
    task_type: Name = "chat"
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    latency_ms: int = Field(default=0, ge=0)
    status: UsageStatus = "ok"
    # Aware, so the ledger never has to guess which timezone a naive time meant.
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))


class UsageTotals(_Model):
    """Request and token totals over some slice of the ledger."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class ProviderModelUsage(UsageTotals):
    """Totals for one provider and model."""

    provider: str
    model: str


class TaskTypeUsage(UsageTotals):
    """Totals for one task type."""

    task_type: str


class DailyUsage(UsageTotals):
    """Totals for one UTC day."""

    day: date


class UserUsage(UsageTotals):
    """Totals for one user (a row of the top-N list)."""

    user_id: str


class UserStats(_Model):
    """Everything the stats page shows for one user."""

    user_id: str
    totals: UsageTotals
    by_provider_model: tuple[ProviderModelUsage, ...]
    by_task_type: tuple[TaskTypeUsage, ...]


class TokenRecord(_Model):
    """A token issued with an id: who it speaks for, its lifetime, whether it is revoked.

    The token itself is never stored (see ``beamish.store._tokens``).
    """

    token_id: Name
    user_id: Name
    admin: bool = False
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None


# -- prompt templates ------------------------------------------------------------------------

OutputFormat = Literal["text", "json", "markdown", "html"]
"""What a template asks the model to answer in."""

PRODUCTION_LABEL = "production"
"""The label a template serves when none is asked for."""

MAX_TEMPLATE_CHARS = 65_536
"""The longest prompt (and system prompt) text a template version may hold."""


class NewTemplateVersion(_Model):
    """A version to add to a template (the template is made with its first version).

    ``prompt`` and ``system`` are Jinja2 source; ``variables_schema`` is a JSON Schema of
    the variables a render must be given (``beamish.templates`` checks both before storing).
    None of them may hold a NUL character (``beamish.store.text``).
    """

    name: TemplateName
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS), NO_NUL]
    system: Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS), NO_NUL] | None = None
    task_type: TemplateName = "chat"
    output_format: OutputFormat | None = None
    variables_schema: TextObject | None = None


class TemplateVersion(_Model):
    """One immutable, numbered version of a template."""

    name: str
    version: int = Field(ge=1)
    prompt: str
    system: str | None = None
    task_type: str
    output_format: OutputFormat | None = None
    variables_schema: JsonDict | None = None
    created_at: datetime
    created_by: str


class TemplateLabel(_Model):
    """A label of a template and the version it points at."""

    name: str
    label: str
    version: int = Field(ge=1)
    updated_at: datetime


class TemplateSummary(_Model):
    """A template: its newest version number and its labels (label → version)."""

    name: str
    latest_version: int = Field(ge=1)
    labels: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
