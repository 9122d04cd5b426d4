"""Persistence: user LLM configs, the usage ledger and stats on SQLite or PostgreSQL.

One async interface (``Store``), two backends chosen by URL::

    from beamish.store import UsageEvent, UsageRecorder, open_store

    async with open_store("sqlite:///beamish.db") as store:      # or "postgresql://..."
        await store.upsert_profile("ada", tier="premium")
        await store.set_default("ada", "anthropic", "claude-sonnet")
        async with UsageRecorder(store) as recorder:
            await recorder.record(UsageEvent(request_id="r1", user_id="ada",
                                             provider="anthropic", model="claude-sonnet"))
        print(await store.user_stats("ada"))

Opening a store applies pending migrations (``beamish/migrations/<dialect>/``); ``migrate(url)``
does only that. Usage is exact: ``record`` is idempotent by ``request_id`` and commits the
ledger row with the config's ``usage_count`` increment; ``UsageRecorder`` batches events into
group commits and returns from ``record`` only once the event is durable. Errors are the
classes in ``beamish.store.errors``; API keys are stored encrypted (``beamish.store.secrets``).
Every write that can change a user's resolved configuration publishes a change event
(``store.subscribe(listener)``; ``beamish.store.events``), which caches of it follow.
"""

from beamish.store._interface import Store
from beamish.store._open import migrate, open_store
from beamish.store._recorder import RetryPolicy, UsageRecorder, UsageWriter
from beamish.store.errors import (
    ConfigNotFoundError,
    ConflictError,
    DuplicateConfigError,
    DuplicateProviderError,
    MigrationChecksumError,
    MigrationError,
    NotFoundError,
    ProviderNotFoundError,
    RecorderClosedError,
    SecretKeyError,
    StoreError,
    StoreUnavailableError,
    UnknownMigrationError,
    UnsupportedURLError,
    UsageBackpressureError,
    UserNotFoundError,
)
from beamish.store.events import (
    ConfigChange,
    ConfigListener,
    SharedConfig,
    SharedConfigChanged,
    TemplateChanged,
    UserConfigChanged,
)
from beamish.store.models import (
    ANY_TIER,
    MAX_TEMPLATE_CHARS,
    PRODUCTION_LABEL,
    TEMPLATE_NAME_PATTERN,
    AuditEntry,
    DailyUsage,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    NewTemplateVersion,
    OutputFormat,
    Provider,
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
    UsageStatus,
    UsageTotals,
    UserLLMConfig,
    UserLLMLayers,
    UserProfile,
    UserStats,
    UserUsage,
)
from beamish.store.secrets import SecretBox

__all__ = [
    # opening and migrating
    "Store", "open_store", "migrate",
    # usage recording
    "UsageRecorder", "RetryPolicy", "UsageWriter",
    # config change events
    "ConfigChange", "ConfigListener", "SharedConfig", "SharedConfigChanged", "UserConfigChanged",
    # models
    "ANY_TIER", "AuditEntry", "DailyUsage", "GlobalConfig", "LLMParameters", "NewLLMConfig",
    "Provider", "ProviderModel", "ProviderModelUsage", "ProviderRecord", "TaskOverride",
    "TaskTypeUsage", "UsageEvent", "UsageStatus", "UsageTotals", "UserLLMConfig",
    "UserLLMLayers", "UserProfile", "UserStats", "UserUsage", "TokenRecord",
    # prompt templates
    "MAX_TEMPLATE_CHARS", "PRODUCTION_LABEL", "TEMPLATE_NAME_PATTERN", "NewTemplateVersion",
    "OutputFormat", "TemplateChanged", "TemplateLabel", "TemplateSummary", "TemplateVersion",
    # errors
    "StoreError", "UnsupportedURLError", "StoreUnavailableError", "MigrationError",
    "MigrationChecksumError", "UnknownMigrationError", "ConflictError", "DuplicateConfigError",
    "DuplicateProviderError", "NotFoundError", "UserNotFoundError", "ConfigNotFoundError",
    "ProviderNotFoundError", "UsageBackpressureError", "RecorderClosedError", "SecretKeyError",
    # secrets
    "SecretBox",
]
