"""``RevocationRefresher``: keeps a server's ``RevocationList`` in step with the store.

A token revoked with ``beamish token revoke ID`` (another process) is refused by a running
server from its next read of the store's revoked ids: at start (``refresh_now``, before the
server listens), then every ``interval_s``
[``REFRESH_INTERVAL_S``]. A revocation through the admin API of the same server is refused at
once (``RevocationList.add``). While the store cannot be read the last list stays in force,
and the failure is logged once until a read succeeds again: a database outage never crashes
this actor, so it never counts against the root supervisor's restart intensity.

Calls: ``"refresh"`` → read now, return how many ids are revoked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from beamish.application import Application
from beamish.auth import RevocationList
from beamish.runtime import Actor, Caller, send_interval
from beamish.store import StoreError

log = logging.getLogger("beamish.server")

NAME: Final = "beamish.server.revocations"
"""The refresher's node-wide name."""

REFRESH: Final = "refresh"
REFRESH_INTERVAL_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class RefresherInit:
    """What the refresher reads from and writes to."""

    runtime: Application
    revoked: RevocationList
    interval_s: float = REFRESH_INTERVAL_S


class RevocationRefresher(Actor):
    """Reads the store's revoked token ids into the list; see the module docstring."""

    def init(self, arg: RefresherInit) -> None:
        # The first read is the server's, once the application runs (the store is not
        # published to its children's init yet): ``BeamishServer`` calls ``refresh_now``.
        self.arg = arg
        self.failing = False
        send_interval(self.ref, REFRESH, arg.interval_s)

    async def handle_info(self, message: Any) -> None:
        if message == REFRESH:
            await self._refresh()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == REFRESH:
            await self._refresh()
            return len(self.arg.revoked)
        raise ValueError(f"unknown revocation refresher request {request!r}")

    async def _refresh(self) -> None:
        failed = not await refresh_now(self.arg.runtime, self.arg.revoked, quiet=self.failing)
        if self.failing and not failed:
            log.warning("revoked tokens read from the store again")
        self.failing = failed


async def refresh_now(runtime: Application, revoked: RevocationList, *,
                      quiet: bool = False) -> bool:
    """Read the store's revoked ids into ``revoked``; False (logged unless ``quiet``) if the
    store cannot be read, the last list staying in force."""
    try:
        revoked.replace(await runtime.store.revoked_token_ids())
    except (StoreError, RuntimeError) as error:  # RuntimeError: the application is stopped
        if not quiet:
            log.warning("cannot read revoked tokens from the store (%s); the last list of %d "
                        "stays in force until it can", type(error).__name__, len(revoked))
        return False
    return True


__all__ = ["NAME", "REFRESH", "REFRESH_INTERVAL_S", "RefresherInit", "RevocationRefresher",
           "refresh_now"]
