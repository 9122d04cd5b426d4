"""``JobFeed``: a server's one listener of job events, fanned out to the users' channels.

The job API calls its listeners in the publisher's task for every job event of the process
— and, on PostgreSQL, of the other processes sharing the queue (``beamish.jobs.relay``: a
job run elsewhere reaches its user's channels here, its error as a kind only) — so the
listener must be cheap: the feed subscribes once (while any user channel is joined),
looks the event's user up in a dict and sends the event, as a plain message, to that user's
joined channels only — never one listener per channel scanning every event.

Events of one job reach this process in the order they happened, except that those of
other processes can cross this process's own (``beamish.jobs.ordering``). The feed
remembers the newest event it pushed for each of the last ``max_outputs`` [4096] outputs
and never pushes an older one: a channel never sees a job go back (from ``started`` to
``queued``, say), and an output's end, once pushed, is its last push. A channel whose
mailbox is full misses the event (counted in ``dropped``): the client is slow, and the
output's state is still one ``GET /api/v1/llm_outputs/{id}`` away.

Bounds: ``max_channels_per_user`` [16] channels of one user receive events (one more is
refused, ``TooManyChannelsError``); the sockets and channels a server accepts are bounded
by the ``[server]`` socket limits besides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from beamish.application import Application
from beamish.jobs import JobEvent
from beamish.jobs.ordering import MAX_OUTPUTS, NewestEvents
from beamish.runtime import ActorRef, MailboxFullError, send

MAX_CHANNELS_PER_USER: Final = 16

_STATES: Final = {"queued": "available", "started": "executing", "retried": "retryable",
                  "completed": "completed", "failed": "discarded", "cancelled": "cancelled"}
"""The job's state after each kind of event (a job queued to run later is ``scheduled``
in the database: its ``queued`` push says ``available`` all the same)."""


class TooManyChannelsError(Exception):
    """The user already has ``max_channels_per_user`` channels following their jobs."""


@dataclass(frozen=True, slots=True)
class JobPush:
    """The message a user channel gets for one job event: the payload to push."""

    payload: dict[str, Any]


def job_payload(event: JobEvent) -> dict[str, Any]:
    """What the ``job`` push of ``event`` carries: ids, states, attempt, template, model and
    timings — never prompt content."""
    payload = event.model_dump(mode="json", exclude={"user_id"}, exclude_none=True)
    state = _STATES.get(event.event)
    if state is not None:  # feedback changes no state
        payload["state"] = state
    return payload


class JobFeed:
    """Job events of one application, sent to the joined channels of each event's user."""

    def __init__(self, runtime: Application, *,
                 max_channels_per_user: int = MAX_CHANNELS_PER_USER,
                 max_outputs: int = MAX_OUTPUTS) -> None:
        self._runtime = runtime
        self._max = max_channels_per_user
        self._newest = NewestEvents(max_outputs)
        self._channels: dict[str, set[ActorRef]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.dropped = 0
        """Events a full channel mailbox did not take."""

    def follow(self, user_id: str, channel: ActorRef) -> Callable[[], None]:
        """Send ``user_id``'s job events to ``channel`` (as ``JobPush``); returns the
        function that stops it.

        Raises:
            TooManyChannelsError: the user has ``max_channels_per_user`` channels already.
            JobsNotRunningError: the application is not running.
        """
        channels = self._channels.get(user_id)
        if channels is not None and len(channels) >= self._max:
            raise TooManyChannelsError(
                f"user {user_id!r} already follows their jobs on {self._max} channels")
        if self._unsubscribe is None:
            self._unsubscribe = self._runtime.jobs.subscribe(self._publish)
        self._channels.setdefault(user_id, set()).add(channel)
        return lambda: self._unfollow(user_id, channel)

    def followers(self, user_id: str) -> int:
        """How many channels follow ``user_id``'s jobs."""
        return len(self._channels.get(user_id, ()))

    @property
    def subscribed(self) -> bool:
        """Whether the feed listens to the application's job events (while any channel
        follows)."""
        return self._unsubscribe is not None

    def _unfollow(self, user_id: str, channel: ActorRef) -> None:
        channels = self._channels.get(user_id)
        if channels is None:
            return
        channels.discard(channel)
        if not channels:
            del self._channels[user_id]
        if not self._channels and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _publish(self, event: JobEvent) -> None:
        channels = self._channels.get(event.user_id)
        if not channels or not self._newest.admit(event):
            return  # nobody follows, or a newer event of the job was pushed already
        push = JobPush(job_payload(event))
        for channel in tuple(channels):
            try:
                send(channel, push)
            except MailboxFullError:
                self.dropped += 1


__all__ = ["MAX_CHANNELS_PER_USER", "JobFeed", "JobPush", "TooManyChannelsError",
           "job_payload"]
