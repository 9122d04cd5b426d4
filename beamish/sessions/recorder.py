"""``UsageRecorderActor``: the supervised owner of the write-behind ``UsageRecorder``.

It publishes the recorder in ``Services`` while it runs, so clients reach it without a
message round trip (as a Registry's table is read directly) and always reach the current
instance after a restart. It traps exits so that on shutdown its ``terminate`` closes the
recorder, which writes everything queued before the store closes.

Events are acknowledged only once durable, so a crash of this actor loses nothing that was
acknowledged: callers with events still in flight get ``RecorderClosedError`` (not
acknowledged; retrying with the same request id is safe) and the restarted recorder takes new
ones. It retries a failing database without limit while it runs (see
``beamish.store.UsageRecorder``), holding at most ``usage_buffer`` events — until the runtime
is given a shutdown deadline (``Services.shutdown_deadline``): then it writes until that
deadline and no longer; the events it could not write count in ``Services.usage_lost``,
which the runtime reports when it stops (after the store has closed, so an event given up on
that the store committed all the same is not reported lost).
"""

from __future__ import annotations

from typing import Any

from beamish.runtime import Actor, Caller
from beamish.runtime.exits import ExitReason
from beamish.sessions.services import Services
from beamish.store import RetryPolicy, UsageRecorder


class UsageRecorderActor(Actor):
    """Supervises the write-behind usage recorder; call ``"buffered"`` for its backlog."""

    async def init(self, services: Services) -> None:
        self.trap_exit()
        settings = services.settings
        self.services = services
        self.recorder = UsageRecorder(
            services.store, max_batch=min(settings.usage_max_batch, settings.usage_buffer),
            flush_interval=settings.usage_flush_interval_s, max_buffer=settings.usage_buffer,
            retry=RetryPolicy(attempts=None, first_delay=settings.usage_retry_first_s,
                              max_delay=settings.usage_retry_max_s),
            stall_after=settings.store_stall_after_s)
        if services.shutdown_deadline is not None:
            self.recorder.close_by(services.shutdown_deadline)
        await self.recorder.__aenter__()
        services.publish_recorder(self.recorder)

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "buffered":
            return self.recorder.buffered
        raise ValueError(f"unknown usage recorder request {request!r}")

    async def terminate(self, reason: ExitReason) -> None:
        self.services.withdraw_recorder(self.recorder)
        try:
            await self.recorder.__aexit__(None, None, None)
        finally:
            self.services.stopped_recorders.append(self.recorder)
