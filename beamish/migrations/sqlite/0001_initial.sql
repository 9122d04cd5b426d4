-- beamish schema, SQLite dialect. Timestamps are UTC ISO-8601 text with microseconds, so
-- text order is time order; JSON columns are text checked by json_valid().

CREATE TABLE user_profiles (
    user_id         TEXT PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    tier            TEXT NOT NULL DEFAULT 'free',
    llm_preferences TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(llm_preferences)),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE user_llm_configs (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES user_profiles (user_id) ON DELETE CASCADE,
    provider    TEXT NOT NULL CHECK (provider IN
                    ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model       TEXT NOT NULL CHECK (length(model) > 0),
    is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    usage_count INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    parameters  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(parameters)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- Its index also serves the (user_id, provider) lookups the usage counter does.
    CONSTRAINT uq_user_llm_configs_user_provider UNIQUE (user_id, provider)
);
-- At most one default per user.
CREATE UNIQUE INDEX uq_user_llm_configs_one_default
    ON user_llm_configs (user_id) WHERE is_default = 1;
CREATE INDEX ix_user_llm_configs_user_id ON user_llm_configs (user_id);
CREATE INDEX ix_user_llm_configs_provider ON user_llm_configs (provider);
CREATE INDEX ix_user_llm_configs_is_default ON user_llm_configs (is_default);
CREATE INDEX ix_user_llm_configs_user_default ON user_llm_configs (user_id, is_default);

CREATE TABLE user_task_overrides (
    user_id    TEXT NOT NULL REFERENCES user_profiles (user_id) ON DELETE CASCADE,
    task_type  TEXT NOT NULL CHECK (length(task_type) > 0),
    provider   TEXT NOT NULL CHECK (provider IN
                   ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model      TEXT NOT NULL CHECK (length(model) > 0),
    parameters TEXT NOT NULL DEFAULT '{}' CHECK (
        json_valid(parameters)
        AND coalesce(json_extract(parameters, '$.timeout_s') BETWEEN 1 AND 300, 1)
        AND coalesce(json_extract(parameters, '$.max_retries') BETWEEN 0 AND 10, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, task_type)
);

CREATE TABLE providers (
    name               TEXT PRIMARY KEY CHECK (length(name) > 0),
    kind               TEXT NOT NULL CHECK (kind IN
                           ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    base_url           TEXT,
    -- Fernet ciphertext; the plaintext key never reaches the database.
    api_key_ciphertext BLOB,
    enabled            INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    validated_at       TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

CREATE TABLE provider_models (
    provider       TEXT NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    model          TEXT NOT NULL CHECK (length(model) > 0),
    context_window INTEGER CHECK (context_window > 0),
    discovered_at  TEXT NOT NULL,
    PRIMARY KEY (provider, model)
);

-- tier '*' applies to every tier without its own row; a sentinel rather than NULL because
-- UNIQUE treats NULLs as distinct.
CREATE TABLE global_configs (
    task_type  TEXT NOT NULL CHECK (length(task_type) > 0),
    tier       TEXT NOT NULL DEFAULT '*',
    provider   TEXT NOT NULL CHECK (provider IN
                   ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model      TEXT NOT NULL CHECK (length(model) > 0),
    parameters TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(parameters)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT uq_global_configs_task_tier UNIQUE (task_type, tier)
);

-- The ledger has no foreign key to user_profiles: usage of a user without a profile (or
-- deleted since) is still usage.
CREATE TABLE usage_events (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    session_id        TEXT,
    user_id           TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    task_type         TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
    latency_ms        INTEGER NOT NULL CHECK (latency_ms >= 0),
    status            TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    created_at        TEXT NOT NULL
);
CREATE INDEX ix_usage_events_user_created ON usage_events (user_id, created_at);
CREATE INDEX ix_usage_events_created ON usage_events (created_at);

CREATE TABLE config_audit (
    id         INTEGER PRIMARY KEY,
    actor      TEXT NOT NULL,
    user_id    TEXT,
    entity     TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    before     TEXT CHECK (before IS NULL OR json_valid(before)),
    after      TEXT CHECK (after IS NULL OR json_valid(after)),
    created_at TEXT NOT NULL
);
CREATE INDEX ix_config_audit_user_created ON config_audit (user_id, created_at);
