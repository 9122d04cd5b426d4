-- A job's unique_key is unique among one user's unfinished jobs, not among everyone's:
-- with the index over the key alone, one user enqueueing a key another user's pending job
-- held got that job back (and its ids) instead of a job of their own.
DROP INDEX jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (user_id, unique_key)
    WHERE unique_key IS NOT NULL
      AND state IN ('available', 'scheduled', 'executing', 'retryable');
