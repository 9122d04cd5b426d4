"""Crashes: a killed writer loses no acknowledged event and doubles none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from anyio.streams.text import TextReceiveStream

from beamish.store import StoreError, open_store
from tests.store import _raw
from tests.store.helpers import configured_user, usage, usage_count

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 300
_COUNTER_MINUS_LEDGER = ("SELECT (SELECT sum(usage_count) FROM user_llm_configs) "
                         "- (SELECT count(*) FROM usage_events)")


async def _run_and_kill(url: str) -> set[str]:
    """Start the child recorder, read acks until enough, SIGKILL it; return the acked ids."""
    acked: set[str] = set()
    command = [sys.executable, "-m", "tests.store._crash_child", url]
    async with await anyio.open_process(command, cwd=ROOT, stderr=subprocess.DEVNULL) as child:
        assert child.stdout is not None
        pending = ""
        async for chunk in TextReceiveStream(child.stdout):
            *lines, pending = (pending + chunk).split("\n")
            acked.update(line.removeprefix("ack ") for line in lines)
            if len(acked) >= ACKS_BEFORE_KILL:
                break
        child.kill()  # SIGKILL: no shutdown flush, no rollback by the client
        await child.wait()
    return acked


async def test_killed_recorder_loses_no_ack_and_doubles_nothing(store_url: str) -> None:
    """Kill -9 under load: acked ⊆ ledger, counter == ledger rows; a replay counts each once."""
    async with open_store(store_url) as store:
        await configured_user(store)
    acked = await _run_and_kill(store_url)
    assert len(acked) >= ACKS_BEFORE_KILL, "the child died before acknowledging enough events"

    ledger = set(await _raw.fetchcol(store_url, "SELECT request_id FROM usage_events"))
    assert acked <= ledger
    async with open_store(store_url) as store:
        assert await usage_count(store) == len(ledger)
        # The client retries everything it may have sent (acked or not): each counts once.
        sent = max(int(rid[1:]) for rid in ledger) + 64
        await store.record_many([usage(f"r{i:06d}") for i in range(sent)])
        assert await usage_count(store) == sent
        assert (await store.usage_totals()).requests == sent


async def test_failure_inside_the_transaction_rolls_back_the_ledger_row(store_url: str) -> None:
    """If the counter update fails, the ledger row is not committed either."""
    async with open_store(store_url) as store:
        await configured_user(store)
        await _raw.script(
            store_url,
            """CREATE TRIGGER refuse_count BEFORE UPDATE OF usage_count ON user_llm_configs
               BEGIN SELECT RAISE(ABORT, 'counter refused'); END;""",
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN RAISE EXCEPTION 'counter refused'; END $$;
               CREATE TRIGGER refuse_count BEFORE UPDATE OF usage_count ON user_llm_configs
                   FOR EACH ROW EXECUTE FUNCTION refuse();""")
        with pytest.raises(StoreError, match="counter refused"):
            await store.record(usage("r1"))
        assert (await store.usage_totals()).requests == 0
        await _raw.script(store_url, "DROP TRIGGER refuse_count;",
                          "DROP TRIGGER refuse_count ON user_llm_configs;")
        assert await store.record(usage("r1")) is True
        assert await usage_count(store) == 1


async def test_writes_cancelled_at_any_point_keep_counts_exact(store_url: str) -> None:
    """Cancelling record() after 0, 1, 2, … scheduler steps never breaks ledger == counter."""
    async with open_store(store_url) as store:
        await configured_user(store)
        for steps in range(40):
            async with anyio.create_task_group() as tg:
                tg.start_soon(store.record, usage(f"c{steps:03d}"))
                for _ in range(steps):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
            # One statement reads one snapshot, even while the cancelled COMMIT is in flight.
            assert await _raw.fetchval(store_url, _COUNTER_MINUS_LEDGER) == 0
        assert await store.record(usage("after")) is True
        assert await usage_count(store) == (await store.usage_totals()).requests
