-- Version 0003 lets SQLite count usage with a trigger (see the SQLite file for why).
-- PostgreSQL has concurrent writers, so record_many keeps counting here itself: one UPDATE
-- per (user, provider), in sorted order — the lock order every writer uses, so none deadlock.
-- Both dialects keep the same version list; here the version only documents the column.

COMMENT ON COLUMN user_llm_configs.usage_count IS
    'LLM requests of this (user, provider) in usage_events, counted in the same transaction.';
