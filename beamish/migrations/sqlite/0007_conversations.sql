-- Durable chat conversations (beamish.chat): a conversation is (user, id), as the
-- conversation channel's topic names it; its messages are numbered 1, 2, ... as the channel
-- hands the ids out (a regenerated answer takes the id of the one it replaces). Answers keep
-- the provider, model, tokens and finish reason they came with, and the user's rating.
-- Deleting a conversation deletes its messages; the usage ledger keeps every request.
CREATE TABLE conversations (
    user_id         TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
    conversation_id TEXT NOT NULL CHECK (length(conversation_id) BETWEEN 1 AND 128),
    title           TEXT CHECK (title IS NULL OR length(title) BETWEEN 1 AND 200),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE INDEX conversations_by_update ON conversations (user_id, updated_at);

CREATE TABLE conversation_messages (
    user_id           TEXT NOT NULL,
    conversation_id   TEXT NOT NULL,
    id                INTEGER NOT NULL CHECK (id >= 1),
    role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    provider          TEXT,
    model             TEXT,
    prompt_tokens     INTEGER CHECK (prompt_tokens IS NULL OR prompt_tokens >= 0),
    completion_tokens INTEGER CHECK (completion_tokens IS NULL OR completion_tokens >= 0),
    finish_reason     TEXT,
    rating            TEXT CHECK (rating IS NULL OR rating IN ('up', 'down')),
    created_at        TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, id),
    FOREIGN KEY (user_id, conversation_id) REFERENCES conversations (user_id, conversation_id)
        ON DELETE CASCADE
);
