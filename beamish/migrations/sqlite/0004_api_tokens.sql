-- Tokens issued with an id (beamish token create, POST /api/admin/tokens): listed by
-- `beamish token list`, revoked by `beamish token revoke ID`. The signed token itself is never
-- stored; verification checks its id against the revoked ids, which servers cache.
CREATE TABLE api_tokens (
    token_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    admin      INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_revoked ON api_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
