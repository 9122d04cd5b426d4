-- Tokens issued with an id (beamish token create, POST /api/admin/tokens): listed by
-- `beamish token list`, revoked by `beamish token revoke ID`. The signed token itself is never
-- stored; verification checks its id against the revoked ids, which servers cache.
CREATE TABLE api_tokens (
    token_id   text PRIMARY KEY,
    user_id    text NOT NULL,
    admin      boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_revoked ON api_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
