"""``JobsContext``: what the job tree's actors and the ``Jobs`` API share, and the names the
actors are found by (as ``beamish.sessions.services`` is for sessions).

The application builds one per run. ``running`` maps the id of each job this process is
running to its worker (to cancel it, and to renew its lease); ``leased_by`` names this
process's leases in the database, and its events to other processes; listeners of job
events are here too, called in the publisher's task — or, for events of other processes
sharing a PostgreSQL queue, from the event loop outside any task (asyncpg calls the
notifier's listener with ``loop.call_soon``) — their exceptions logged and never raised.
So a listener must not block, nor count on a current task.
"""

from __future__ import annotations

import logging
import os
import random as _random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from beamish.compact_json import dumps
from beamish.jobs.event_log import log_fields
from beamish.jobs.models import JobEvent, Renderer
from beamish.jobs.relay import Outbox
from beamish.jobs.settings import JobsSettings
from beamish.jobs.waiters import Waiters
from beamish.runtime import ActorRef
from beamish.sessions.services import Services

log = logging.getLogger("beamish.jobs")

JOBS_SUP = "beamish.jobs"
ENQUEUER = "beamish.jobs.enqueuer"
FINISHER = "beamish.jobs.finisher"
LEASES = "beamish.jobs.leases"
PRUNER = "beamish.jobs.pruner"
NOTIFIER = "beamish.jobs.notifier"



def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


JobListener = Callable[[JobEvent], object]

MEAN_WEIGHT = 0.1
"""Weight of the newest job's duration in a queue's moving mean (for estimates)."""


def producer_name(queue: str) -> str:
    """The node name of ``queue``'s producer."""
    return f"beamish.jobs.producer.{queue}"


def worker_name(queue: str, index: int) -> str:
    """The node name of ``queue``'s worker number ``index``."""
    return f"beamish.jobs.worker.{queue}.{index}"


@dataclass(eq=False)
class QueueLoad:
    """What this process knows of a queue's load, for ``estimated_completion``."""

    backlog: int = 0
    mean_s: float = 1.0

    def finished(self, seconds: float) -> None:
        """A job of the queue took ``seconds``."""
        self.backlog = max(self.backlog - 1, 0)
        self.mean_s += MEAN_WEIGHT * (seconds - self.mean_s)


@dataclass(eq=False)
class JobsContext:
    """Shared by the job tree and the API of one application run; ``waiters`` are the
    callers of ``Jobs.wait``, woken by the events ``deliver`` hands out."""

    services: Services
    settings: JobsSettings
    renderer: Renderer | None = None
    now: Callable[[], datetime] = utc_now
    """Wall-clock time, aware UTC: what run times and leases are compared with."""
    random: Callable[[], float] = _random.random
    """Jitter source of retry delays."""
    leased_by: str = field(default_factory=lambda: (
        f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"))
    running: dict[int, ActorRef] = field(default_factory=dict)
    load: dict[str, QueueLoad] = field(default_factory=dict)
    outbox: Outbox | None = None
    """Where published events wait to be sent to other processes (the notifier sets it
    where the store can notify: ``beamish.jobs.relay``)."""
    waiters: Waiters = field(init=False)
    _listeners: list[JobListener] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.waiters = Waiters(max_per_user=self.settings.max_waits_per_user,
                               max_total=self.settings.max_waits)

    def queue_load(self, queue: str) -> QueueLoad:
        """The load record of ``queue``."""
        load = self.load.get(queue)
        if load is None:
            load = self.load[queue] = QueueLoad()
        return load

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        """Call ``listener`` with every job event; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: JobEvent) -> None:
        """Log ``event`` as one JSON line (``beamish.jobs.event_log``: no content), send it
        to other processes (``outbox``) and hand it to every listener."""
        if log.isEnabledFor(logging.INFO):
            fields = log_fields(event)
            log.info(dumps(fields), extra={"job_event": fields})
        if self.outbox is not None:
            self.outbox.put(event)
        self.deliver(event)

    def deliver(self, event: JobEvent) -> None:
        """Hand ``event`` to the waiters of its output and every listener (an event of
        another process: it was logged there)."""
        self.waiters.wake(event)
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("job event listener %r failed", listener)


__all__ = ["ENQUEUER", "FINISHER", "JOBS_SUP", "LEASES", "NOTIFIER", "PRUNER", "JobListener",
           "JobsContext", "QueueLoad", "producer_name", "worker_name"]
