-- Durable LLM jobs (beamish.jobs): the queue of jobs, one stored output per job, and the
-- users' feedback on outputs. A job is claimed with a lease (lease_until, leased_by); one
-- whose lease has expired is claimable again, so a dead worker's job runs again on its own.
-- Finished jobs are pruned after [jobs] prune_after_s; outputs and feedback are kept.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL CHECK (state IN ('available', 'scheduled', 'executing',
                     'retryable', 'completed', 'discarded', 'cancelled')),
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at       TEXT NOT NULL,
    lease_until  TEXT,
    leased_by    TEXT,
    unique_key   TEXT,
    user_id      TEXT NOT NULL,
    output_id    TEXT NOT NULL UNIQUE,
    args         TEXT NOT NULL,
    last_error   TEXT,
    inserted_at  TEXT NOT NULL,
    attempted_at TEXT,
    finished_at  TEXT,
    updated_at   TEXT NOT NULL
);

-- The uniqueness of a key among unfinished jobs is the database's: enqueue is one
-- INSERT ... ON CONFLICT on this index, never a check followed by an insert.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND state IN ('available', 'scheduled', 'executing', 'retryable');
CREATE INDEX jobs_claimable ON jobs (queue, priority, run_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX jobs_leased ON jobs (queue, lease_until) WHERE state = 'executing';
CREATE INDEX jobs_user_unfinished ON jobs (user_id)
    WHERE state IN ('available', 'scheduled', 'executing', 'retryable');
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE state IN ('completed', 'discarded', 'cancelled');

CREATE TABLE job_outputs (
    output_id         TEXT PRIMARY KEY,
    job_id            INTEGER NOT NULL,
    user_id           TEXT NOT NULL,
    template_name     TEXT,
    template_version  INTEGER,
    variables         TEXT NOT NULL DEFAULT '{}',
    task_type         TEXT NOT NULL,
    request           TEXT NOT NULL,
    provider          TEXT,
    model             TEXT,
    parameters        TEXT,
    provenance        TEXT,
    prompt            TEXT,
    system_prompt     TEXT,
    raw_response      TEXT,
    parsed_output     TEXT,
    format            TEXT NOT NULL CHECK (format IN ('text', 'json', 'markdown', 'html')),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed',
                          'failed', 'cancelled')),
    error             TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER,
    parent_output_id  TEXT REFERENCES job_outputs (output_id) ON DELETE SET NULL,
    relation          TEXT CHECK (relation IN ('rerun', 'regenerate')),
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    completed_at      TEXT
);

CREATE INDEX job_outputs_user ON job_outputs (user_id, created_at, output_id);

CREATE TABLE job_feedback (
    output_id  TEXT NOT NULL REFERENCES job_outputs (output_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    rating     TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    reason     TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (output_id, user_id)
);
