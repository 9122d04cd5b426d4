"""Job settings: ``[jobs]`` in ``beamish.toml`` or ``BEAMISH_JOBS__*`` variables.

Options (defaults in brackets):

* ``enabled`` [True] — run workers in this process (False: enqueue only; another process
  sharing the database runs the jobs).
* ``queues`` [``high`` 10, ``default`` 10, ``low`` 5 workers] — each queue's
  ``concurrency`` (jobs it runs at once in this process) and, optionally, its own
  ``max_retries``, ``backoff_base_s`` and ``backoff_cap_s``. Jobs name a queue; within one,
  a lower ``priority`` number runs first.
* ``poll_interval_s`` [1.0] — how often an idle queue looks for due jobs (scheduled jobs,
  retries, other processes' jobs on SQLite; PostgreSQL also wakes workers by NOTIFY).
* ``lease_s`` [30.0] — how long a claimed job stays leased without renewal; a worker renews
  its leases every third of it. A job whose worker died runs again once its lease expires.
* ``claim_batch`` [50] — jobs claimed per query at most.
* ``max_retries`` [5], ``backoff_base_s`` [5.0], ``backoff_cap_s`` [300.0] — the default
  retry policy: exponential backoff with full jitter (``beamish.runtime.backoff``).
* ``prune_after_s`` [7 days], ``prune_interval_s`` [600] — finished jobs older than this are
  deleted (outputs and feedback are kept).
* ``max_unfinished_per_user`` [1000] — a user's pending and running jobs at most; one more
  is a ``JobLimitError`` until some finish (exact within a process; processes sharing a
  database may each admit a batch over it). An enqueue whose ``unique_key`` the user's
  pending or running job holds creates nothing, and is answered that job even at the cap.
* ``max_waits_per_user`` [16], ``max_waits`` [1000] — outputs one user, and this process,
  may wait for at once (``Jobs.wait``, the HTTP long poll; each wait reads its output every
  ``poll_interval_s``); one more is a ``WaitLimitError`` until a wait ends.
* ``max_prompt_chars`` [200_000], ``max_variables_bytes`` [64 KiB], ``max_schema_bytes``
  [64 KiB] — bounds on what a job carries; larger is an ``InvalidJobError``. A template's
  rendered prompt and system are bound by ``max_prompt_chars`` too: over it, the enqueue
  fails when the template is checked there, else the job's attempt fails for good.
* ``listen_check_s`` [30.0] — on PostgreSQL, how often the connection listening for
  NOTIFY is checked with a query; one that gives no answer within as long (a network path
  gone silent, a hung server) is taken as lost and replaced (workers poll meanwhile).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QueueSettings(BaseModel):
    """One queue: its workers in this process, and its retry policy where not the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int = Field(default=10, ge=1, le=1000)
    max_retries: int | None = Field(default=None, ge=0, le=50)
    backoff_base_s: float | None = Field(default=None, ge=0)
    backoff_cap_s: float | None = Field(default=None, ge=0)


def _default_queues() -> dict[str, QueueSettings]:
    return {"high": QueueSettings(concurrency=10), "default": QueueSettings(concurrency=10),
            "low": QueueSettings(concurrency=5)}


class JobsSettings(BaseModel):
    """How jobs are claimed, run, retried and pruned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    queues: dict[str, QueueSettings] = Field(default_factory=_default_queues,
                                             min_length=1, max_length=64)
    poll_interval_s: float = Field(default=1.0, gt=0)
    lease_s: float = Field(default=30.0, ge=0.1)
    claim_batch: int = Field(default=50, ge=1, le=1000)
    max_retries: int = Field(default=5, ge=0, le=50)
    backoff_base_s: float = Field(default=5.0, ge=0)
    backoff_cap_s: float = Field(default=300.0, ge=0)
    prune_after_s: float = Field(default=7 * 86400.0, gt=0)
    prune_interval_s: float = Field(default=600.0, gt=0)
    max_unfinished_per_user: int = Field(default=1000, ge=1)
    max_waits_per_user: int = Field(default=16, ge=1)
    max_waits: int = Field(default=1000, ge=1)
    max_prompt_chars: int = Field(default=200_000, ge=1)
    max_variables_bytes: int = Field(default=64 * 1024, ge=256)
    max_schema_bytes: int = Field(default=64 * 1024, ge=256)
    listen_check_s: float = Field(default=30.0, gt=0)


__all__ = ["JobsSettings", "QueueSettings"]
