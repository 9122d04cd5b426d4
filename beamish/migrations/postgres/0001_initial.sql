-- beamish schema, PostgreSQL dialect.

CREATE TABLE user_profiles (
    user_id         text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    tier            text NOT NULL DEFAULT 'free',
    llm_preferences jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE user_llm_configs (
    id          uuid PRIMARY KEY,
    user_id     text NOT NULL REFERENCES user_profiles (user_id) ON DELETE CASCADE,
    provider    text NOT NULL CHECK (provider IN
                    ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model       text NOT NULL CHECK (length(model) > 0),
    is_default  boolean NOT NULL DEFAULT false,
    usage_count bigint NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    metadata    jsonb NOT NULL DEFAULT '{}',
    parameters  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- Its index also serves the (user_id, provider) lookups the usage counter does.
    CONSTRAINT uq_user_llm_configs_user_provider UNIQUE (user_id, provider)
);
-- At most one default per user.
CREATE UNIQUE INDEX uq_user_llm_configs_one_default
    ON user_llm_configs (user_id) WHERE is_default;
CREATE INDEX ix_user_llm_configs_user_id ON user_llm_configs (user_id);
CREATE INDEX ix_user_llm_configs_provider ON user_llm_configs (provider);
CREATE INDEX ix_user_llm_configs_is_default ON user_llm_configs (is_default);
CREATE INDEX ix_user_llm_configs_user_default ON user_llm_configs (user_id, is_default);

CREATE TABLE user_task_overrides (
    user_id    text NOT NULL REFERENCES user_profiles (user_id) ON DELETE CASCADE,
    task_type  text NOT NULL CHECK (length(task_type) > 0),
    provider   text NOT NULL CHECK (provider IN
                    ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model      text NOT NULL CHECK (length(model) > 0),
    parameters jsonb NOT NULL DEFAULT '{}' CHECK (
        coalesce((parameters->>'timeout_s')::numeric BETWEEN 1 AND 300, true)
        AND coalesce((parameters->>'max_retries')::numeric BETWEEN 0 AND 10, true)),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, task_type)
);

CREATE TABLE providers (
    name               text PRIMARY KEY CHECK (length(name) > 0),
    kind               text NOT NULL CHECK (kind IN
                    ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    base_url           text,
    -- Fernet ciphertext; the plaintext key never reaches the database.
    api_key_ciphertext bytea,
    enabled            boolean NOT NULL DEFAULT true,
    validated_at       timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE provider_models (
    provider       text NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    model          text NOT NULL CHECK (length(model) > 0),
    context_window integer CHECK (context_window > 0),
    discovered_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, model)
);

-- tier '*' applies to every tier without its own row; a sentinel rather than NULL because
-- the SQLite schema must say the same thing and its UNIQUE treats NULLs as distinct.
CREATE TABLE global_configs (
    task_type  text NOT NULL CHECK (length(task_type) > 0),
    tier       text NOT NULL DEFAULT '*',
    provider   text NOT NULL CHECK (provider IN
                    ('openai', 'anthropic', 'ollama', 'tgi', 'openai_compatible', 'echo')),
    model      text NOT NULL CHECK (length(model) > 0),
    parameters jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT uq_global_configs_task_tier UNIQUE (task_type, tier)
);

-- The ledger has no foreign key to user_profiles: usage of a user without a profile (or
-- deleted since) is still usage.
CREATE TABLE usage_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        text NOT NULL,
    session_id        text,
    user_id           text NOT NULL,
    provider          text NOT NULL,
    model             text NOT NULL,
    task_type         text NOT NULL,
    prompt_tokens     integer NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens integer NOT NULL CHECK (completion_tokens >= 0),
    latency_ms        integer NOT NULL CHECK (latency_ms >= 0),
    status            text NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    created_at        timestamptz NOT NULL,
    CONSTRAINT uq_usage_events_request_id UNIQUE (request_id)
);
CREATE INDEX ix_usage_events_user_created ON usage_events (user_id, created_at);
CREATE INDEX ix_usage_events_created ON usage_events (created_at);

CREATE TABLE config_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text NOT NULL,
    user_id    text,
    entity     text NOT NULL,
    entity_key text NOT NULL,
    action     text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    before     jsonb,
    after      jsonb,
    created_at timestamptz NOT NULL
);
CREATE INDEX ix_config_audit_user_created ON config_audit (user_id, created_at);
