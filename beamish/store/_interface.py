"""The ``Store`` protocol: everything the rest of beamish may ask of persistence.

``open_store(url)`` returns an implementation for the URL's backend; code that needs a store
should annotate with ``Store`` so tests of other packages can hand in anything that fits.
All methods raise only ``beamish.store.errors`` exceptions (and pydantic validation errors
for bad inputs built by the caller). Every write that can change a resolution publishes a
change event to the listeners given to ``subscribe`` (``beamish.store.events``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from beamish.store.conversation_models import (
    ConversationMessage,
    ConversationRecord,
    ConversationWrite,
)
from beamish.store.events import ConfigListener
from beamish.store.job_models import (
    AttemptResult,
    CancelledJob,
    EnqueuedJob,
    FeedbackRecord,
    FeedbackStats,
    JobRecord,
    NewJob,
    OutputFilter,
    OutputPage,
    OutputRecord,
    Rating,
)
from beamish.store.models import (
    ANY_TIER,
    AuditEntry,
    DailyUsage,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    NewTemplateVersion,
    ProviderModel,
    ProviderModelUsage,
    ProviderRecord,
    TaskOverride,
    TaskTypeUsage,
    TemplateLabel,
    TemplateSummary,
    TemplateVersion,
    TokenRecord,
    UsageEvent,
    UsageTotals,
    UserLLMConfig,
    UserLLMLayers,
    UserProfile,
    UserStats,
    UserUsage,
)


@runtime_checkable
class Store(Protocol):
    """Async access to user configs, the provider registry, the usage ledger and its stats."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``."""
        ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations now; return the names applied."""
        ...

    async def ping(self) -> None:
        """Ask the database the cheapest question; raise ``StoreUnavailableError`` if it
        cannot answer (for readiness probes)."""
        ...

    def subscribe(self, listener: ConfigListener) -> Callable[[], None]:
        """Call ``listener`` with the change event of every config write, in the writer's
        task once the write's transaction has ended; returns the unsubscribe function.
        What it raises is logged, never raised to the writer (see ``beamish.store.events``)."""
        ...

    async def upsert_profile(
        self,
        user_id: str,
        *,
        tier: str = "free",
        llm_preferences: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> UserProfile:
        """Create the user's profile, or replace its tier and preferences."""
        ...

    async def get_profile(self, user_id: str) -> UserProfile:
        """The user's profile; raises ``UserNotFoundError``."""
        ...

    async def delete_profile(self, user_id: str, *, actor: str = "system") -> None:
        """Delete the user with their configs and overrides (their usage stays)."""
        ...

    async def add_config(
        self, user_id: str, config: NewLLMConfig, *, actor: str = "system"
    ) -> UserLLMConfig:
        """Add a provider config; raises ``DuplicateConfigError``, ``UserNotFoundError``."""
        ...

    async def update_config(
        self,
        user_id: str,
        provider: str,
        *,
        model: str | None = None,
        parameters: LLMParameters | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> UserLLMConfig:
        """Change the given fields of a config; raises ``ConfigNotFoundError``."""
        ...

    async def remove_config(self, user_id: str, provider: str, *, actor: str = "system") -> None:
        """Remove a config; raises ``ConfigNotFoundError``."""
        ...

    async def set_default(
        self, user_id: str, provider: str, model: str, *, actor: str = "system"
    ) -> UserLLMConfig:
        """Make (provider, model) the user's default, creating the config if needed."""
        ...

    async def get_default(self, user_id: str) -> UserLLMConfig | None:
        """The user's default config, or None."""
        ...

    async def get_config(self, user_id: str, provider: str) -> UserLLMConfig:
        """One config; raises ``ConfigNotFoundError``."""
        ...

    async def list_configs(self, user_id: str) -> list[UserLLMConfig]:
        """All of the user's configs, by provider."""
        ...

    async def set_task_override(
        self, user_id: str, override: TaskOverride, *, actor: str = "system"
    ) -> TaskOverride:
        """Create or replace the user's override for ``override.task_type``."""
        ...

    async def get_task_override(self, user_id: str, task_type: str) -> TaskOverride | None:
        """The user's override for a task type, or None."""
        ...

    async def list_task_overrides(self, user_id: str) -> list[TaskOverride]:
        """All of the user's overrides, by task type."""
        ...

    async def delete_task_override(
        self, user_id: str, task_type: str, *, actor: str = "system"
    ) -> None:
        """Delete an override; raises ``NotFoundError`` if there is none."""
        ...

    async def get_user_llm_layers(self, user_id: str, task_type: str) -> UserLLMLayers:
        """The user's profile, configs and override for ``task_type``, in one query.

        A user without a profile has no configs or overrides: ``profile`` is None.
        """
        ...

    async def register_provider(
        self, provider: ProviderRecord, *, actor: str = "system"
    ) -> ProviderRecord:
        """Register a provider; raises ``DuplicateProviderError``."""
        ...

    async def get_provider(self, name: str) -> ProviderRecord:
        """A registered provider; raises ``ProviderNotFoundError``."""
        ...

    async def list_providers(self) -> list[ProviderRecord]:
        """Every registered provider, by name."""
        ...

    async def update_provider(
        self, provider: ProviderRecord, *, actor: str = "system"
    ) -> ProviderRecord:
        """Replace a provider's fields; raises ``ProviderNotFoundError``."""
        ...

    async def remove_provider(self, name: str, *, actor: str = "system") -> None:
        """Remove a provider and its model catalog; raises ``ProviderNotFoundError``."""
        ...

    async def replace_provider_models(self, provider: str, models: Sequence[ProviderModel]) -> None:
        """Replace a provider's model catalog with ``models`` (a fresh discovery)."""
        ...

    async def list_provider_models(self, provider: str) -> list[ProviderModel]:
        """A provider's model catalog, by model name."""
        ...

    async def set_global_config(
        self, config: GlobalConfig, *, actor: str = "system"
    ) -> GlobalConfig:
        """Create or replace the global config for (task type, tier)."""
        ...

    async def delete_global_config(
        self, task_type: str, tier: str = ANY_TIER, *, actor: str = "system"
    ) -> None:
        """Delete the global config of exactly (task type, tier); ``NotFoundError`` if none."""
        ...

    async def get_global_config(self, task_type: str, tier: str = ANY_TIER) -> GlobalConfig | None:
        """The config for (task type, tier), falling back to the any-tier entry."""
        ...

    async def list_global_configs(self) -> list[GlobalConfig]:
        """Every global config, by task type then tier."""
        ...

    async def list_audit(self, *, user_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Config changes, newest first, optionally of one user."""
        ...

    async def record_token(self, token_id: str, user_id: str, *, admin: bool,
                           expires_at: datetime | None) -> TokenRecord:
        """Record a token just issued with ``token_id`` (never the token itself)."""
        ...

    async def list_tokens(self, *, user_id: str | None = None) -> list[TokenRecord]:
        """The recorded tokens, newest first, optionally of one user."""
        ...

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Revoke the token (the first revocation's time is kept); None if unknown."""
        ...

    async def revoked_token_ids(self) -> frozenset[str]:
        """The ids of revoked tokens that have not expired yet."""
        ...

    async def record(self, event: UsageEvent) -> bool:
        """Record one event; False if its request id was already recorded."""
        ...

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        """Record events in one transaction; await the request ids newly counted
        (``groups_commits`` and ``on_durable``: see ``Store.record_many``)."""
        ...

    @property
    def groups_commits(self) -> bool:
        """Whether ``record_many`` hands events at once to a writer that groups commits."""
        ...

    async def usage_totals(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> UsageTotals:
        """Requests, errors and tokens in the window (everyone's, or one user's)."""
        ...

    async def session_totals(self, user_id: str, session_id: str) -> UsageTotals:
        """Requests, errors and tokens of one session of ``user_id`` (all time)."""
        ...

    async def usage_by_provider_model(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[ProviderModelUsage]:
        """Totals per (provider, model), by provider then model."""
        ...

    async def usage_by_task_type(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[TaskTypeUsage]:
        """Totals per task type, by task type."""
        ...

    async def usage_per_day(
        self,
        *,
        since: datetime,
        until: datetime,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
    ) -> list[DailyUsage]:
        """Totals per UTC day in [since, until), narrowed to ``provider``, ``model`` and
        ``task_type`` where given; days without usage are left out."""
        ...

    async def top_users(
        self,
        n: int,
        *,
        by: Literal["tokens", "requests"] = "tokens",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UserUsage]:
        """The ``n`` users with the most tokens (or requests) in the window."""
        ...

    async def user_stats(
        self,
        user_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        provider: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
    ) -> UserStats:
        """One user's totals, per provider/model and per task type, in one query: of the
        requests to ``provider``, ``model`` and for ``task_type`` only, where given."""
        ...

    async def create_template_version(self, new: NewTemplateVersion, *, actor: str = "system",
                                      only_new: bool = False) -> TemplateVersion:
        """Add the next version of ``new.name`` (numbered by the database, never reused),
        creating the template with version 1; publishes ``TemplateChanged``. With
        ``only_new``, an existing template is a ``ConflictError`` and nothing is written."""
        ...

    async def get_template_version(self, name: str, *, version: int | None = None,
                                   label: str | None = None) -> TemplateVersion | None:
        """Version ``version``, else the one ``label`` points at, else the served one: the
        ``production`` label's, or the latest while there is no ``production`` label. None
        if there is none; ``ValueError`` if both are given."""
        ...

    async def get_template(self, name: str) -> TemplateSummary | None:
        """The template's latest version number and labels; None if it does not exist."""
        ...

    async def list_templates(self, *, limit: int = 1000) -> list[TemplateSummary]:
        """The first ``limit`` templates by name, each with its latest version and labels."""
        ...

    async def list_template_versions(self, name: str, *,
                                     limit: int = 100) -> list[TemplateVersion]:
        """The template's newest ``limit`` versions, newest first (empty if none)."""
        ...

    async def set_template_label(self, name: str, label: str, version: int, *,
                                 actor: str = "system") -> TemplateLabel:
        """Point ``label`` at ``version`` in one write; ``NotFoundError`` if there is no such
        version, ``ConflictError`` past the per-template label cap."""
        ...

    async def delete_template_label(self, name: str, label: str, *,
                                    actor: str = "system") -> None:
        """Remove the label; ``NotFoundError`` if the template has no such label."""
        ...

    # -- jobs: the durable queue, outputs and feedback (beamish.store._jobs) ---------------

    async def enqueue_job(self, job: NewJob) -> EnqueuedJob:
        """Insert ``job`` and its pending output, or return the unfinished job holding its
        unique key (``created`` False); one ``INSERT … ON CONFLICT``, never check-then-insert."""
        ...

    async def enqueue_jobs(self, jobs: Sequence[NewJob]) -> list[EnqueuedJob]:
        """``enqueue_job`` for each of ``jobs``, in order, in one transaction."""
        ...

    async def count_unfinished_jobs(self, user_ids: Sequence[str]) -> dict[str, int]:
        """How many unfinished jobs each of ``user_ids`` has (users with none left out)."""
        ...

    async def held_unique_keys(self, keys: Sequence[tuple[str, str]],
                               ) -> set[tuple[str, str]]:
        """Which of ``keys`` (``(user_id, unique_key)``) an unfinished job holds now."""
        ...

    async def claim_jobs(self, queue: str, *, limit: int, leased_by: str,
                         lease_until: datetime, now: datetime | None = None,
                         discarded: list[JobRecord] | None = None) -> list[JobRecord]:
        """Lease up to ``limit`` runnable jobs of ``queue`` (expired leases included) to
        ``leased_by``; their outputs become ``processing``. Jobs whose lease expired on
        their last attempt are discarded, and appended to ``discarded`` when given."""
        ...

    async def renew_leases(self, job_ids: Sequence[int], *, leased_by: str,
                           lease_until: datetime) -> set[int]:
        """Extend ``leased_by``'s leases on ``job_ids``; the ids it still holds."""
        ...

    async def finish_jobs(self, results: Sequence[AttemptResult]) -> set[int]:
        """Write how attempts ended, in one transaction; the ids of the jobs written (only
        those still leased by the writer)."""
        ...

    async def release_jobs(self, job_ids: Sequence[int], *, leased_by: str,
                           ) -> list[JobRecord]:
        """Give back ``leased_by``'s leases (its process stops): due again now; the jobs
        released."""
        ...

    async def cancel_job(self, job_id: int, *, user_id: str | None = None,
                         ) -> CancelledJob | None:
        """Cancel an unfinished job and its output; None if it had finished; raises
        ``NotFoundError`` if there is no such job (of ``user_id``, when given)."""
        ...

    async def get_job(self, job_id: int) -> JobRecord:
        """A job; raises ``NotFoundError`` (also once pruned)."""
        ...

    async def get_output(self, output_id: str) -> OutputRecord:
        """An output; raises ``NotFoundError``."""
        ...

    async def list_outputs(self, user_id: str, *, filters: OutputFilter | None = None,
                           cursor: str | None = None, limit: int = 50) -> OutputPage:
        """``user_id``'s outputs, newest first, a page at a time."""
        ...

    async def set_feedback(self, output_id: str, user_id: str, rating: Rating,
                           reason: str | None = None) -> FeedbackRecord:
        """Create or replace ``user_id``'s rating of ``output_id``."""
        ...

    async def get_feedback(self, output_id: str, user_id: str) -> FeedbackRecord | None:
        """``user_id``'s rating of ``output_id``, or None."""
        ...

    async def feedback_stats(self, *, template_name: str | None = None,
                             ) -> list[FeedbackStats]:
        """Ups and downs per (template, version, model)."""
        ...

    async def prune_jobs(self, finished_before: datetime) -> int:
        """Delete jobs finished before ``finished_before``; how many (outputs stay)."""
        ...

    async def listen_jobs(self, callback: Callable[[str], object], *,
                          on_event: Callable[[str], object] | None = None,
                          on_lost: Callable[[], object] | None = None,
                          check_every_s: float | None = None,
                          ) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback(queue)`` when a job is inserted (PostgreSQL NOTIFY),
        ``on_event(payload)`` for each job events payload notified, and ``on_lost()`` if the
        listening connection is lost (or, checked every ``check_every_s``, stops
        answering); the stop function, or None where the backend cannot
        notify (SQLite: poll)."""
        ...

    async def notify_job_events(self, payloads: Sequence[str]) -> None:
        """Send job event payloads to the processes listening (nothing on SQLite)."""
        ...

    async def consume_token(self, token_id: str) -> TokenRecord | None:
        """Revoke the token and return it, unless it is unknown or already revoked (None):
        a single-use code is accepted once."""
        ...

    # -- conversations: durable chat history (beamish.store._conversations) -----------------

    async def write_conversations(self, writes: Sequence[ConversationWrite]) -> None:
        """Apply message writes in order in one transaction (the chat's group commit);
        the conversations written to are created if new."""
        ...

    async def list_conversations(self, user_id: str, *,
                                 limit: int = 100) -> list[ConversationRecord]:
        """``user_id``'s newest conversations, the most recently updated first."""
        ...

    async def count_conversations(self, user_id: str) -> int:
        """How many conversations ``user_id`` has stored."""
        ...

    async def get_conversation(self, user_id: str,
                               conversation_id: str) -> ConversationRecord | None:
        """``user_id``'s conversation of that id, or None."""
        ...

    async def list_conversation_messages(self, user_id: str, conversation_id: str, *,
                                         limit: int = 1000) -> list[ConversationMessage]:
        """The newest ``limit`` messages of the conversation, oldest first."""
        ...

    async def rename_conversation(self, user_id: str, conversation_id: str,
                                  title: str) -> ConversationRecord:
        """Retitle the conversation; ``NotFoundError`` if there is none."""
        ...

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete it and its messages (not the ledger); ``NotFoundError`` if there is none."""
        ...

    async def rate_conversation_message(self, user_id: str, conversation_id: str,
                                        message_id: int,
                                        rating: Rating | None) -> ConversationMessage:
        """Set or clear the user's rating of one answer; ``NotFoundError`` if none."""
        ...
