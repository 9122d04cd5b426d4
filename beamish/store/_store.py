"""``SqlStore``: the one implementation of ``Store``, over either backend.

Lock order. Every transaction that writes more than one row takes its locks in one global
order, so concurrent writers queue instead of deadlocking:

1. ``usage_events`` rows, by ``request_id`` (the batch is sorted before inserting);
2. ``user_llm_configs`` rows, by ``(user_id, provider)`` (counter updates are sorted; config
   changes first lock all of the user's configs in provider order).

Config changes write a ``config_audit`` row in the same transaction, and every write that can
change a resolution runs in ``_config_write``: the one place that publishes its change event
(``beamish.store.events``) once the transaction has ended.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import uuid4

from beamish.store import _stats
from beamish.store._backend import Backend, Executor, Row, Transaction, utc_now
from beamish.store._conversations import ConversationQueries
from beamish.store._jobs import JobQueries
from beamish.store._templates import TemplateQueries
from beamish.store._tokens import TokenQueries
from beamish.store.errors import (
    ConfigNotFoundError,
    ConflictError,
    DuplicateConfigError,
    DuplicateProviderError,
    NotFoundError,
    ProviderNotFoundError,
    UserNotFoundError,
)
from beamish.store.events import (
    ConfigChange,
    ConfigEvents,
    ConfigListener,
    SharedConfigChanged,
    UserConfigChanged,
)
from beamish.store.models import (
    ANY_TIER,
    AuditEntry,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    ProviderModel,
    ProviderRecord,
    TaskOverride,
    UsageEvent,
    UserLLMConfig,
    UserLLMLayers,
    UserProfile,
)

_M = TypeVar("_M", UserProfile, TaskOverride, GlobalConfig)

_CONFIG = "SELECT * FROM user_llm_configs WHERE user_id = $1"
_OVERRIDE = ("SELECT task_type, provider, model, parameters FROM user_task_overrides "
             "WHERE user_id = $1")
_PROVIDER = ("SELECT name, kind, base_url, api_key_ciphertext, enabled, validated_at "
             "FROM providers")
_GLOBAL = ("SELECT task_type, tier, provider, model, parameters, template, template_label "
           "FROM global_configs")
# One row per config (one row with NULL config columns when there is none), each carrying
# the profile and the task's override: what resolution needs in one round trip.
_LAYERS = """SELECT p.user_id AS profile_user_id, p.tier AS profile_tier,
        p.llm_preferences AS profile_llm_preferences, p.created_at AS profile_created_at,
        p.updated_at AS profile_updated_at,
        c.id, c.provider, c.model, c.is_default, c.usage_count, c.metadata, c.parameters,
        c.created_at, c.updated_at,
        o.provider AS override_provider, o.model AS override_model,
        o.parameters AS override_parameters
    FROM user_profiles p
    LEFT JOIN user_llm_configs c ON c.user_id = p.user_id
    LEFT JOIN user_task_overrides o ON o.user_id = p.user_id AND o.task_type = $2
    WHERE p.user_id = $1
    ORDER BY c.provider"""
_LAYER_CONFIG_COLUMNS = ("id", "provider", "model", "is_default", "usage_count", "metadata",
                         "parameters", "created_at", "updated_at")


class SqlStore(_stats.StatsQueries, TokenQueries, TemplateQueries, JobQueries,
               ConversationQueries):
    """The store over one backend; open it with ``async with``."""

    def __init__(self, backend: Backend, *, migrate: bool = True) -> None:
        self._backend = backend
        self._migrate = migrate
        self._events = ConfigEvents()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self._backend.dialect

    @property
    def _token_backend(self) -> Backend:
        return self._backend

    @property
    def _jobs_backend(self) -> Backend:
        return self._backend

    async def __aenter__(self) -> Self:
        try:
            await self._backend.connect()
            if self._migrate:
                await self._backend.migrate()
        except BaseException:
            await self._backend.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._backend.aclose()

    async def migrate(self) -> list[str]:
        """Apply pending migrations now; return the names applied."""
        return await self._backend.migrate()

    async def ping(self) -> None:
        """Ask the database the cheapest question (``SELECT 1``) on the reader."""
        await self._backend.reader.fetch("SELECT 1")

    def subscribe(self, listener: ConfigListener) -> Callable[[], None]:
        """Call ``listener`` after every config write; returns the unsubscribe function.

        See ``beamish.store.events`` for the events, and when and how listeners run.
        """
        return self._events.subscribe(listener)

    def _config_write(self, change: ConfigChange) -> _ConfigWrite:
        """The transaction of a write that can change a resolution; ``change`` is published
        when it ends, committed or not (a failure may come after the commit)."""
        return _ConfigWrite(self._backend.transaction(), self._events, change)

    # -- profiles ----------------------------------------------------------------------------

    async def upsert_profile(self, user_id: str, *, tier: str = "free",
                             llm_preferences: dict[str, Any] | None = None,
                             actor: str = "system") -> UserProfile:
        """Create the user's profile, or replace its tier and preferences."""
        now = utc_now()
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            before = await tx.fetchrow("SELECT * FROM user_profiles WHERE user_id = $1", user_id)
            row = await _one(tx, """INSERT INTO user_profiles
                    (user_id, tier, llm_preferences, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $4)
                ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier,
                    llm_preferences = excluded.llm_preferences, updated_at = excluded.updated_at
                RETURNING *""", user_id, tier, json.dumps(llm_preferences or {}), now)
            profile = UserProfile.model_validate(row)
            await _audit(tx, actor, user_id, "user_profile", user_id,
                         _model(before, UserProfile), profile)
        return profile

    async def get_profile(self, user_id: str) -> UserProfile:
        """The user's profile; raises ``UserNotFoundError``."""
        row = await self._backend.reader.fetchrow(
            "SELECT * FROM user_profiles WHERE user_id = $1", user_id)
        if row is None:
            raise UserNotFoundError(user_id)
        return UserProfile.model_validate(row)

    async def delete_profile(self, user_id: str, *, actor: str = "system") -> None:
        """Delete the user with their configs and overrides (their usage stays)."""
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            await _lock_configs(tx, self._backend, user_id)
            row = await tx.fetchrow(
                "DELETE FROM user_profiles WHERE user_id = $1 RETURNING *", user_id)
            if row is None:
                raise UserNotFoundError(user_id)
            await _audit(tx, actor, user_id, "user_profile", user_id,
                         UserProfile.model_validate(row), None)

    # -- provider configs --------------------------------------------------------------------

    async def add_config(self, user_id: str, config: NewLLMConfig, *,
                         actor: str = "system") -> UserLLMConfig:
        """Add a provider config; raises ``DuplicateConfigError``, ``UserNotFoundError``."""
        now = utc_now()
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            await _lock_configs(tx, self._backend, user_id)
            if config.is_default:
                await _clear_default(tx, user_id, now)
            try:
                row = await _one(tx, """INSERT INTO user_llm_configs (id, user_id, provider,
                        model, is_default, usage_count, metadata, parameters, created_at,
                        updated_at)
                    VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8) RETURNING *""",
                    uuid4(), user_id, config.provider, config.model, config.is_default,
                    json.dumps(config.metadata), config.parameters.to_json(), now)
            except ConflictError as error:
                raise _config_conflict(error, user_id, config.provider) from error
            created = UserLLMConfig.model_validate(row)
            await _audit(tx, actor, user_id, "user_llm_config", config.provider, None, created)
        return created

    async def update_config(self, user_id: str, provider: str, *, model: str | None = None,
                            parameters: LLMParameters | None = None,
                            metadata: dict[str, Any] | None = None,
                            actor: str = "system") -> UserLLMConfig:
        """Change the given fields of a config; raises ``ConfigNotFoundError``."""
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            before = await _config_for_update(tx, self._backend, user_id, provider)
            row = await _one(tx, """UPDATE user_llm_configs SET model = coalesce($3, model),
                    parameters = coalesce($4, parameters), metadata = coalesce($5, metadata),
                    updated_at = $6
                WHERE user_id = $1 AND provider = $2 RETURNING *""",
                user_id, provider, model, parameters.to_json() if parameters else None,
                None if metadata is None else json.dumps(metadata), utc_now())
            after = UserLLMConfig.model_validate(row)
            await _audit(tx, actor, user_id, "user_llm_config", provider, before, after)
        return after

    async def remove_config(self, user_id: str, provider: str, *, actor: str = "system") -> None:
        """Remove a config; raises ``ConfigNotFoundError``."""
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            before = await _config_for_update(tx, self._backend, user_id, provider)
            await tx.execute(
                "DELETE FROM user_llm_configs WHERE user_id = $1 AND provider = $2",
                user_id, provider)
            await _audit(tx, actor, user_id, "user_llm_config", provider, before, None)

    async def set_default(self, user_id: str, provider: str, model: str, *,
                          actor: str = "system") -> UserLLMConfig:
        """Make (provider, model) the user's default, creating the config if needed."""
        now = utc_now()
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            locked = await _lock_configs(tx, self._backend, user_id)
            before = next((c for c in locked if c.provider == provider), None)
            await _clear_default(tx, user_id, now)
            try:
                row = await _one(tx, """INSERT INTO user_llm_configs (id, user_id, provider,
                        model, is_default, usage_count, metadata, parameters, created_at,
                        updated_at)
                    VALUES ($1, $2, $3, $4, TRUE, 0, '{}', '{}', $5, $5)
                    ON CONFLICT (user_id, provider) DO UPDATE SET model = excluded.model,
                        is_default = TRUE, updated_at = excluded.updated_at
                    RETURNING *""", uuid4(), user_id, provider, model, now)
            except ConflictError as error:
                raise _config_conflict(error, user_id, provider) from error
            after = UserLLMConfig.model_validate(row)
            await _audit(tx, actor, user_id, "user_llm_config", provider, before, after)
        return after

    async def get_default(self, user_id: str) -> UserLLMConfig | None:
        """The user's default config, or None."""
        row = await self._backend.reader.fetchrow(_CONFIG + " AND is_default", user_id)
        return None if row is None else UserLLMConfig.model_validate(row)

    async def get_config(self, user_id: str, provider: str) -> UserLLMConfig:
        """One config; raises ``ConfigNotFoundError``."""
        row = await self._backend.reader.fetchrow(_CONFIG + " AND provider = $2",
                                                  user_id, provider)
        if row is None:
            raise ConfigNotFoundError(user_id, provider)
        return UserLLMConfig.model_validate(row)

    async def list_configs(self, user_id: str) -> list[UserLLMConfig]:
        """All of the user's configs, by provider."""
        rows = await self._backend.reader.fetch(_CONFIG + " ORDER BY provider", user_id)
        return [UserLLMConfig.model_validate(r) for r in rows]

    # -- per-task overrides ------------------------------------------------------------------

    async def set_task_override(self, user_id: str, override: TaskOverride, *,
                                actor: str = "system") -> TaskOverride:
        """Create or replace the user's override for ``override.task_type``."""
        now = utc_now()
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            before = await tx.fetchrow(_OVERRIDE + " AND task_type = $2",
                                       user_id, override.task_type)
            try:
                await tx.execute("""INSERT INTO user_task_overrides (user_id, task_type,
                        provider, model, parameters, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $6)
                    ON CONFLICT (user_id, task_type) DO UPDATE SET provider = excluded.provider,
                        model = excluded.model, parameters = excluded.parameters,
                        updated_at = excluded.updated_at""",
                    user_id, override.task_type, override.provider, override.model,
                    override.parameters.to_json(), now)
            except ConflictError as error:
                raise _user_conflict(error, user_id) from error
            await _audit(tx, actor, user_id, "user_task_override", override.task_type,
                         _model(before, TaskOverride), override)
        return override

    async def get_task_override(self, user_id: str, task_type: str) -> TaskOverride | None:
        """The user's override for a task type, or None."""
        row = await self._backend.reader.fetchrow(_OVERRIDE + " AND task_type = $2",
                                                  user_id, task_type)
        return _model(row, TaskOverride)

    async def list_task_overrides(self, user_id: str) -> list[TaskOverride]:
        """All of the user's overrides, by task type."""
        rows = await self._backend.reader.fetch(_OVERRIDE + " ORDER BY task_type", user_id)
        return [TaskOverride.model_validate(r) for r in rows]

    async def delete_task_override(self, user_id: str, task_type: str, *,
                                   actor: str = "system") -> None:
        """Delete an override; raises ``NotFoundError`` if there is none."""
        async with self._config_write(UserConfigChanged(user_id)) as tx:
            row = await tx.fetchrow("""DELETE FROM user_task_overrides
                WHERE user_id = $1 AND task_type = $2
                RETURNING task_type, provider, model, parameters""", user_id, task_type)
            if row is None:
                raise NotFoundError(f"user {user_id!r} has no override for task {task_type!r}")
            await _audit(tx, actor, user_id, "user_task_override", task_type,
                         TaskOverride.model_validate(row), None)

    async def get_user_llm_layers(self, user_id: str, task_type: str) -> UserLLMLayers:
        """The user's profile, configs and override for ``task_type``, in one query.

        A user without a profile has no configs or overrides: ``profile`` is None.
        """
        rows = await self._backend.reader.fetch(_LAYERS, user_id, task_type)
        if not rows:
            return UserLLMLayers(profile=None)
        first = rows[0]
        profile = UserProfile.model_validate({k.removeprefix("profile_"): v
                                              for k, v in first.items()
                                              if k.startswith("profile_")})
        override = None if first["override_provider"] is None else TaskOverride(
            task_type=task_type, provider=first["override_provider"],
            model=first["override_model"], parameters=first["override_parameters"])
        configs = tuple(UserLLMConfig.model_validate(
            {"user_id": user_id, **{k: r[k] for k in _LAYER_CONFIG_COLUMNS}})
            for r in rows if r["id"] is not None)
        return UserLLMLayers(profile=profile, configs=configs, task_override=override)

    # -- providers registry ------------------------------------------------------------------

    async def register_provider(self, provider: ProviderRecord, *,
                                actor: str = "system") -> ProviderRecord:
        """Register a provider; raises ``DuplicateProviderError``."""
        now = utc_now()
        async with self._config_write(SharedConfigChanged("providers")) as tx:
            try:
                await tx.execute("""INSERT INTO providers (name, kind, base_url,
                        api_key_ciphertext, enabled, validated_at, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)""",
                    provider.name, provider.kind, provider.base_url,
                    provider.api_key_ciphertext, provider.enabled, provider.validated_at, now)
            except ConflictError as error:
                if error.kind == "unique":
                    raise DuplicateProviderError(provider.name) from error
                raise
            await _audit(tx, actor, None, "provider", provider.name, None, provider)
        return provider

    async def get_provider(self, name: str) -> ProviderRecord:
        """A registered provider; raises ``ProviderNotFoundError``."""
        row = await self._backend.reader.fetchrow(_PROVIDER + " WHERE name = $1", name)
        if row is None:
            raise ProviderNotFoundError(name)
        return ProviderRecord.model_validate(row)

    async def list_providers(self) -> list[ProviderRecord]:
        """Every registered provider, by name."""
        rows = await self._backend.reader.fetch(_PROVIDER + " ORDER BY name")
        return [ProviderRecord.model_validate(r) for r in rows]

    async def update_provider(self, provider: ProviderRecord, *,
                              actor: str = "system") -> ProviderRecord:
        """Replace a provider's fields; raises ``ProviderNotFoundError``."""
        async with self._config_write(SharedConfigChanged("providers")) as tx:
            before = await tx.fetchrow(_PROVIDER + " WHERE name = $1" + self._backend.lock_rows,
                                       provider.name)
            if before is None:
                raise ProviderNotFoundError(provider.name)
            await tx.execute("""UPDATE providers SET kind = $2, base_url = $3,
                    api_key_ciphertext = $4, enabled = $5, validated_at = $6, updated_at = $7
                WHERE name = $1""", provider.name, provider.kind, provider.base_url,
                provider.api_key_ciphertext, provider.enabled, provider.validated_at,
                utc_now())
            await _audit(tx, actor, None, "provider", provider.name,
                         ProviderRecord.model_validate(before), provider)
        return provider

    async def remove_provider(self, name: str, *, actor: str = "system") -> None:
        """Remove a provider and its model catalog; raises ``ProviderNotFoundError``."""
        async with self._config_write(SharedConfigChanged("providers")) as tx:
            row = await tx.fetchrow(
                "DELETE FROM providers WHERE name = $1 RETURNING name, kind, base_url, "
                "api_key_ciphertext, enabled, validated_at", name)
            if row is None:
                raise ProviderNotFoundError(name)
            await _audit(tx, actor, None, "provider", name,
                         ProviderRecord.model_validate(row), None)

    async def replace_provider_models(self, provider: str,
                                      models: Sequence[ProviderModel]) -> None:
        """Replace a provider's model catalog with ``models`` (a fresh discovery)."""
        async with self._config_write(SharedConfigChanged("catalog")) as tx:
            await tx.execute("DELETE FROM provider_models WHERE provider = $1", provider)
            try:
                await tx.executemany("""INSERT INTO provider_models
                        (provider, model, context_window, discovered_at)
                    VALUES ($1, $2, $3, $4)""",
                    [(provider, m.model, m.context_window, m.discovered_at) for m in models])
            except ConflictError as error:
                if error.kind == "foreign_key":
                    raise ProviderNotFoundError(provider) from error
                raise

    async def list_provider_models(self, provider: str) -> list[ProviderModel]:
        """A provider's model catalog, by model name."""
        rows = await self._backend.reader.fetch(
            "SELECT * FROM provider_models WHERE provider = $1 ORDER BY model", provider)
        return [ProviderModel.model_validate(r) for r in rows]

    # -- global configuration ----------------------------------------------------------------

    async def set_global_config(self, config: GlobalConfig, *,
                                actor: str = "system") -> GlobalConfig:
        """Create or replace the global config for (task type, tier)."""
        now = utc_now()
        key = f"{config.task_type}/{config.tier}"
        async with self._config_write(SharedConfigChanged("global_configs")) as tx:
            before = await tx.fetchrow(_GLOBAL + " WHERE task_type = $1 AND tier = $2",
                                       config.task_type, config.tier)
            await tx.execute("""INSERT INTO global_configs (task_type, tier, provider, model,
                    parameters, created_at, updated_at, template, template_label)
                VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)
                ON CONFLICT (task_type, tier) DO UPDATE SET provider = excluded.provider,
                    model = excluded.model, parameters = excluded.parameters,
                    updated_at = excluded.updated_at, template = excluded.template,
                    template_label = excluded.template_label""",
                config.task_type, config.tier, config.provider, config.model,
                config.parameters.to_json(), now, config.template, config.template_label)
            await _audit(tx, actor, None, "global_config", key,
                         _model(before, GlobalConfig), config)
        return config

    async def delete_global_config(self, task_type: str, tier: str = ANY_TIER, *,
                                   actor: str = "system") -> None:
        """Delete the global config of exactly (task type, tier) — the any-tier entry when
        ``tier`` is ``*``, never a fallback; raises ``NotFoundError`` if there is none."""
        async with self._config_write(SharedConfigChanged("global_configs")) as tx:
            row = await tx.fetchrow("""DELETE FROM global_configs
                WHERE task_type = $1 AND tier = $2
                RETURNING task_type, tier, provider, model, parameters, template,
                    template_label""", task_type, tier)
            if row is None:
                raise NotFoundError(f"no global config for task {task_type!r} and tier "
                                    f"{tier!r}")
            await _audit(tx, actor, None, "global_config", f"{task_type}/{tier}",
                         GlobalConfig.model_validate(row), None)

    async def get_global_config(self, task_type: str,
                                tier: str = ANY_TIER) -> GlobalConfig | None:
        """The config for (task type, tier), falling back to the any-tier entry."""
        row = await self._backend.reader.fetchrow(
            _GLOBAL + " WHERE task_type = $1 AND tier IN ($2, '*') ORDER BY tier = '*' LIMIT 1",
            task_type, tier)
        return _model(row, GlobalConfig)

    async def list_global_configs(self) -> list[GlobalConfig]:
        """Every global config, by task type then tier."""
        rows = await self._backend.reader.fetch(_GLOBAL + " ORDER BY task_type, tier")
        return [GlobalConfig.model_validate(r) for r in rows]

    async def list_audit(self, *, user_id: str | None = None,
                         limit: int = 100) -> list[AuditEntry]:
        """Config changes, newest first, optionally of one user."""
        sql = ("SELECT actor, user_id, entity, entity_key, action, before, after, created_at "
               "FROM config_audit")
        args: list[object] = []
        if user_id is not None:
            sql += " WHERE user_id = $1"
            args.append(user_id)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {int(limit)}"
        rows = await self._backend.reader.fetch(sql, *args)
        return [AuditEntry.model_validate(r) for r in rows]

    # -- usage ledger ------------------------------------------------------------------------

    async def record(self, event: UsageEvent) -> bool:
        """Record one event; False if its request id was already recorded."""
        return bool(await self.record_many([event]))

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        """Record events in one transaction; await the request ids newly counted.

        Each new ledger row and the matching ``usage_count`` increment commit together; a
        request id already in the ledger (or repeated in ``events``: the first event of it
        is written) is skipped.

        Where the backend groups commits itself (``groups_commits``: SQLite, whose writer
        thread commits at once whatever queued during its previous commit), the events are
        handed over now and the awaitable is a future: they are written whether or not
        anyone awaits it. Elsewhere (PostgreSQL) it is a coroutine that writes when awaited.

        ``on_durable()``, if given, may run on the event loop before the awaitable is done,
        once the transaction has committed and every request id was new (so the outcome will
        be all of them): the SQLite backend calls it in the turn its writer thread reports
        the commit, a turn before an awaiting caller resumes. Not called otherwise.

        Raises:
            StoreError: the store is not open (at once, where the backend groups commits).
        """
        backend = self._backend
        # One writer thread takes no row locks: no order to keep, and no sort on its way.
        batch = _unique(events) if backend.groups_commits else _unique_sorted(events)
        if not batch:
            nothing: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
            nothing.set_result(frozenset())
            return nothing
        return backend.record_usage(batch, on_durable)

    @property
    def groups_commits(self) -> bool:
        """Whether ``record_many`` hands events at once to a writer that groups commits."""
        return self._backend.groups_commits

    def _reader(self) -> Executor:
        return self._backend.reader

    def _day_expr(self) -> str:
        return self._backend.day_expr

    def _ledger_time(self, value: datetime) -> object:
        return self._backend.ledger_time(value)

    @property
    def _template_backend(self) -> Backend:
        return self._backend

    async def _audit_template(self, tx: Executor, actor: str, key: str, before: Any,
                              after: Any) -> None:
        await _audit(tx, actor, None, "template", key, before, after)

    @property
    def _conversation_backend(self) -> Backend:
        return self._backend


class _ConfigWrite:
    """``async with``: a backend transaction that publishes a change once it has ended."""

    __slots__ = ("_change", "_events", "_transaction")

    def __init__(self, transaction: Transaction, events: ConfigEvents,
                 change: ConfigChange) -> None:
        self._transaction = transaction
        self._events = events
        self._change = change

    async def __aenter__(self) -> Executor:
        return await self._transaction.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._transaction.__aexit__(exc_type, exc, tb)
        finally:
            self._events.publish(self._change)


def _unique(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    """The first event of each request id, in the order given."""
    first: dict[str, UsageEvent] = {}
    for event in events:
        first.setdefault(event.request_id, event)
    return list(first.values())


def _unique_sorted(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    """The first event of each request id, by request id (the writers' lock order)."""
    return sorted(_unique(events), key=lambda e: e.request_id)


async def _one(tx: Executor, sql: str, *args: object) -> Row:
    row = await tx.fetchrow(sql, *args)
    assert row is not None, "statement has RETURNING and affects one row"
    return row


def _model(row: Row | None, cls: type[_M]) -> _M | None:
    return None if row is None else cls.model_validate(row)


async def _lock_configs(tx: Executor, backend: Backend, user_id: str) -> list[UserLLMConfig]:
    # Lock every config of the user in provider order: the lock order record_many() uses.
    rows = await tx.fetch(_CONFIG + " ORDER BY provider" + backend.lock_rows, user_id)
    return [UserLLMConfig.model_validate(r) for r in rows]


async def _config_for_update(tx: Executor, backend: Backend, user_id: str,
                             provider: str) -> UserLLMConfig:
    locked = await _lock_configs(tx, backend, user_id)
    found = next((c for c in locked if c.provider == provider), None)
    if found is None:
        raise ConfigNotFoundError(user_id, provider)
    return found


async def _clear_default(tx: Executor, user_id: str, now: object) -> None:
    await tx.execute("UPDATE user_llm_configs SET is_default = FALSE, updated_at = $2 "
                     "WHERE user_id = $1 AND is_default", user_id, now)


def _user_conflict(error: ConflictError, user_id: str) -> Exception:
    return UserNotFoundError(user_id) if error.kind == "foreign_key" else error


def _config_conflict(error: ConflictError, user_id: str, provider: str) -> Exception:
    if error.kind == "unique":
        return DuplicateConfigError(user_id, provider)
    return _user_conflict(error, user_id)


async def _audit(tx: Executor, actor: str, user_id: str | None, entity: str, key: str,
                 before: Any, after: Any) -> None:
    await tx.execute("""INSERT INTO config_audit
            (actor, user_id, entity, entity_key, action, before, after, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        actor, user_id, entity, key,
        "create" if before is None else "delete" if after is None else "update",
        _audit_json(before), _audit_json(after), utc_now())


def _audit_json(value: Any) -> str | None:
    if value is None:
        return None
    # The API key ciphertext is left out of the audit trail on purpose.
    return str(value.model_dump_json(exclude={"api_key_ciphertext"}))
