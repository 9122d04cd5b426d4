"""``ConversationJournal``: conversation messages written behind, in group commits.

The chat round trip must not wait for a database commit per message, so the conversation
channel hands each message (and each removal of a regenerated answer) to the journal, which
queues it and returns at once; the journal's actor, ``ConversationWriter``, writes what is
queued with ``Store.write_conversations`` — one transaction per batch of up to ``max_batch``
[500] writes, in the order they were made. A batch starts ``flush_interval`` [0.1 s] after
its first write (at once when ``max_batch`` writes wait, or someone waits in ``flush``), and
writes made while a batch commits form the next one: so the chat's messages cost the
database a few transactions a second under any load — on SQLite each one holds the single
write lock that the usage ledger's group commits, which every answer waits for, need too.

Bounds and failures (options, defaults in brackets): once ``max_buffer`` [10_000] writes
wait, a question (or a regenerate's removal) is refused with ``JournalFullError`` (the
channel replies ``busy``) rather than letting memory grow while the database is down. An
answer is always taken: each follows a question or removal admitted within the bound, so the
buffer holds at most twice it. A batch failing with ``StoreUnavailableError`` is retried
``attempts`` [5] times, the delay doubling from ``first_delay`` [0.05 s]; a batch that still
fails (or fails for another store error) is logged with its size and dropped.

What a crash can lose: the messages not yet committed — those of the last
``flush_interval`` and the commit in progress, or what waited while the database was down.
Never usage: the usage ledger is written by the usage recorder, which acknowledges an
answer (``done``) only once its usage is durable. On a clean stop the writer is stopped
after the sockets' channels (it is the application's child added before the endpoint), and
its ``terminate`` writes everything still queued.

``flush()`` waits until every write made before it is committed (or dropped): readers that
go to the store — the chat page, a conversation loaded into the cache, the conversations'
HTTP API — flush first, so they see every message the channel has handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

from beamish.chat.errors import JournalFullError
from beamish.runtime import Actor, send
from beamish.runtime.process import ActorRef
from beamish.runtime.supervisor import ChildSpec, child_spec
from beamish.store import Store, StoreError, StoreUnavailableError
from beamish.store.conversation_models import ConversationWrite, NewConversationMessage

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH: Final = 500
DEFAULT_MAX_BUFFER: Final = 10_000
DEFAULT_ATTEMPTS: Final = 5
DEFAULT_FIRST_DELAY_S: Final = 0.05
DEFAULT_FLUSH_INTERVAL_S: Final = 0.1
_WRITE: Final = "write"


class ConversationJournal:
    """The queue of conversation writes and what waits for them; see the module docstring.

    Args:
        store: returns the open store (the application's, once it runs).
    """

    def __init__(self, store: Callable[[], Store], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_buffer: int = DEFAULT_MAX_BUFFER, attempts: int = DEFAULT_ATTEMPTS,
                 first_delay: float = DEFAULT_FIRST_DELAY_S,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        if min(max_batch, max_buffer, attempts) < 1:
            raise ValueError("max_batch, max_buffer and attempts must be at least 1")
        self.store = store
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.attempts = attempts
        self.first_delay = first_delay
        self.flush_interval = flush_interval
        self._hurry = asyncio.Event()  # set: write now, without waiting out the interval
        self._queued: list[ConversationWrite] = []
        self._made = 0  # writes handed to the journal so far
        self._done = 0  # of them, committed or dropped
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer: ActorRef | None = None
        self._signalled = False
        #: Writes dropped after failing (logged); for the operator and tests.
        self.dropped = 0

    def child_spec(self, **options: Any) -> ChildSpec:
        """The writer actor's spec, for the application's root (before the sockets')."""
        return child_spec(ConversationWriter, self, id="conversation_writer",
                          shutdown=30_000, **options)

    @property
    def queued(self) -> int:
        """Writes waiting to be committed."""
        return len(self._queued)

    def write(self, item: ConversationWrite) -> None:
        """Queue one write (at once; committed soon). A question or a removal is refused
        with ``JournalFullError`` while ``max_buffer`` writes wait; an answer never."""
        if len(self._queued) >= self.max_buffer and (
                not isinstance(item, NewConversationMessage) or item.role != "assistant"):
            raise JournalFullError(
                f"{len(self._queued)} messages are waiting to be stored (the database is "
                "slow or down); send this one again shortly")
        self._queued.append(item)
        self._made += 1
        if len(self._queued) >= self.max_batch:
            self._hurry.set()
        if not self._signalled and self._writer is not None:
            self._signalled = True
            send(self._writer, _WRITE)

    async def flush(self) -> None:
        """Return once every write made so far is committed (or dropped)."""
        if self._writer is None:
            await self.write_queued()  # no writer running (not started, or stopped)
            return
        target = self._made
        if self._done >= target:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        self._hurry.set()
        await waiter

    async def write_queued(self, *, batches: int | None = None) -> None:
        """Write what is queued, batch by batch (``batches`` of them at most)."""
        written = 0
        while self._queued and (batches is None or written < batches):
            batch = self._queued[:self.max_batch]
            del self._queued[:len(batch)]
            try:
                await self._commit(batch)
            finally:  # written, dropped, or lost with a crashed writer: nobody waits for it
                self._done += len(batch)
                self._wake()
            written += 1

    async def _commit(self, batch: list[ConversationWrite]) -> None:
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                await self.store().write_conversations(batch)
                return
            except StoreUnavailableError as error:
                if attempt == self.attempts:
                    self._drop(batch, error)
                    return
                log.warning("storing %d conversation writes failed (attempt %d of %d): %s",
                            len(batch), attempt, self.attempts, error)
                await asyncio.sleep(delay)
                delay *= 2
            except StoreError as error:
                self._drop(batch, error)
                return

    def _drop(self, batch: list[ConversationWrite], error: Exception) -> None:
        self.dropped += len(batch)
        log.error("%d conversation writes were not stored and are lost (the usage ledger "
                  "keeps their requests): %s", len(batch), error)

    def _wake(self) -> None:
        done, kept = self._done, []
        for target, waiter in self._waiters:
            if target <= done:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                kept.append((target, waiter))
        self._waiters = kept

    def _attach(self, writer: ActorRef | None) -> None:
        self._writer = writer
        self._signalled = False
        if writer is not None and self._queued:
            self._signalled = True
            send(writer, _WRITE)

    async def _gather(self) -> None:
        """Wait out the flush interval, unless a batch is full or someone waits."""
        if self.flush_interval <= 0 or self._waiters or len(self._queued) >= self.max_batch:
            return
        self._hurry.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self.flush_interval)

    def _written(self) -> None:
        """The writer has handled a signal: signal again if more is queued."""
        self._signalled = False
        if self._queued and self._writer is not None:
            self._signalled = True
            send(self._writer, _WRITE)


class ConversationWriter(Actor):
    """Owns the journal's writing: one batch per signal, everything left on the way out."""

    async def init(self, journal: ConversationJournal) -> None:
        self.trap_exit()  # so terminate runs on shutdown, and writes what is queued
        self.journal = journal
        journal._attach(self.ref)

    async def handle_info(self, message: Any) -> Any:
        if message == _WRITE:
            await self.journal._gather()
            await self.journal.write_queued(batches=1)
            self.journal._written()
            return None
        return super().handle_info(message)

    async def terminate(self, reason: Any) -> None:
        self.journal._attach(None)
        await self.journal.write_queued()


__all__ = ["ConversationJournal", "ConversationWriter"]
