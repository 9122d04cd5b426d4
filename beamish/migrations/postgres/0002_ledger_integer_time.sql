-- Version 0002 changes how SQLite stores the ledger's time (integer microseconds, see the
-- SQLite file for why). PostgreSQL's timestamptz is already an 8-byte integer underneath, so
-- here the version only documents the column; both dialects keep the same version list.

COMMENT ON COLUMN usage_events.created_at IS
    'When the LLM request finished, UTC. SQLite stores integer microseconds since the epoch.';
