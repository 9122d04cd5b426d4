-- Each new ledger row counts itself in user_llm_configs.usage_count.
--
-- Why: recording a batch of usage becomes one INSERT … SELECT FROM json_each(…) statement,
-- which SQLite runs as one implicit transaction on the writer's thread — the ledger rows and
-- their counts commit together, with one trip to that thread instead of six (BEGIN, the
-- known-id check, the insert, the counts, COMMIT). A request id already in the ledger is
-- skipped by ON CONFLICT DO NOTHING, so no row is inserted and nothing is counted twice.
-- SQLite has one writer at a time, so the per-row updates cannot deadlock.

CREATE TRIGGER usage_events_count AFTER INSERT ON usage_events
BEGIN
    UPDATE user_llm_configs SET usage_count = usage_count + 1
    WHERE user_id = NEW.user_id AND provider = NEW.provider;
END;
