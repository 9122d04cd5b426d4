-- Durable LLM jobs (beamish.jobs): the queue of jobs, one stored output per job, and the
-- users' feedback on outputs. A job is claimed with a lease (lease_until, leased_by); one
-- whose lease has expired is claimable again, so a dead worker's job runs again on its own.
-- Finished jobs are pruned after [jobs] prune_after_s; outputs and feedback are kept.
CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,
    state        text NOT NULL CHECK (state IN ('available', 'scheduled', 'executing',
                     'retryable', 'completed', 'discarded', 'cancelled')),
    attempt      integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    run_at       timestamptz NOT NULL,
    lease_until  timestamptz,
    leased_by    text,
    unique_key   text,
    user_id      text NOT NULL,
    output_id    text NOT NULL UNIQUE,
    args         jsonb NOT NULL,
    last_error   text,
    inserted_at  timestamptz NOT NULL,
    attempted_at timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL
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

-- Workers LISTEN on beamish_jobs; a new job wakes them (the payload is its queue) at commit.
CREATE FUNCTION beamish_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('beamish_jobs', NEW.queue);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION beamish_jobs_notify();

CREATE TABLE job_outputs (
    output_id         text PRIMARY KEY,
    job_id            bigint NOT NULL,
    user_id           text NOT NULL,
    template_name     text,
    template_version  integer,
    variables         jsonb NOT NULL DEFAULT '{}',
    task_type         text NOT NULL,
    request           jsonb NOT NULL,
    provider          text,
    model             text,
    parameters        jsonb,
    provenance        jsonb,
    prompt            text,
    system_prompt     text,
    raw_response      text,
    parsed_output     text,
    format            text NOT NULL CHECK (format IN ('text', 'json', 'markdown', 'html')),
    status            text NOT NULL CHECK (status IN ('pending', 'processing', 'completed',
                          'failed', 'cancelled')),
    error             text,
    attempts          integer NOT NULL DEFAULT 0,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    latency_ms        integer,
    parent_output_id  text REFERENCES job_outputs (output_id) ON DELETE SET NULL,
    relation          text CHECK (relation IN ('rerun', 'regenerate')),
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz
);

CREATE INDEX job_outputs_user ON job_outputs (user_id, created_at, output_id);

CREATE TABLE job_feedback (
    output_id  text NOT NULL REFERENCES job_outputs (output_id) ON DELETE CASCADE,
    user_id    text NOT NULL,
    rating     text NOT NULL CHECK (rating IN ('up', 'down')),
    reason     text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (output_id, user_id)
);
