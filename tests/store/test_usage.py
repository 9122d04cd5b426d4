"""The usage ledger: idempotent recording, counter in the same transaction, no deadlocks."""

from __future__ import annotations

import anyio
import pytest

from beamish.store import Store
from beamish.store._store import SqlStore
from tests.store.helpers import configured_user, usage, usage_count

pytestmark = pytest.mark.anyio


async def test_record_counts_once_per_request_id(store: Store) -> None:
    """A repeated request id is a no-op: False, and the counter does not move."""
    await configured_user(store)
    assert await store.record(usage("r1")) is True
    assert await store.record(usage("r1")) is False
    assert await usage_count(store) == 1
    assert (await store.usage_totals()).requests == 1


async def test_record_many_skips_known_and_repeated_ids(store: Store) -> None:
    """record_many returns exactly the newly counted ids, even with repeats in the batch."""
    await configured_user(store, providers=("openai", "anthropic"))
    await store.record(usage("r1"))
    counted = await store.record_many([usage("r1"), usage("r2"), usage("r2"),
                                       usage("r3", provider="anthropic")])
    assert counted == {"r2", "r3"}
    assert await usage_count(store, provider="openai") == 2
    assert await usage_count(store, provider="anthropic") == 1


async def test_on_durable_is_told_only_of_a_committed_batch_of_new_ids(store: Store) -> None:
    """SQLite tells on_durable, before record_many returns, that an all-new batch committed
    (the rows are readable from then on); a batch with a known id is never reported so.
    PostgreSQL answers on the event loop itself and reports nothing early."""
    await configured_user(store)
    told: list[int] = []

    def durable() -> None:
        told.append(1)

    assert await store.record_many([usage("r1"), usage("r2")], on_durable=durable) == {
        "r1", "r2"}
    assert told == ([1] if store.dialect == "sqlite" else [])
    assert await usage_count(store) == 2
    told.clear()
    assert await store.record_many([usage("r2"), usage("r3")], on_durable=durable) == {"r3"}
    assert await store.record_many([usage("r3")], on_durable=durable) == frozenset()
    assert told == []


async def test_partly_known_batch_returns_exactly_the_new_ids(store: Store) -> None:
    """Known ids scattered through a batch: the new ones, and only they, are counted."""
    await configured_user(store)
    await store.record_many([usage(f"r{i:02d}") for i in range(0, 40, 3)])
    counted = await store.record_many([usage(f"r{i:02d}") for i in range(40)])
    assert counted == {f"r{i:02d}" for i in range(40) if i % 3}
    assert await usage_count(store) == 40
    assert await store.record_many([usage("r05"), usage("r06")]) == frozenset()


@pytest.mark.parametrize("size", [1, 3, 1024, 1500])
async def test_batches_of_any_size_count_exactly_their_new_ids(store: Store, size: int) -> None:
    """Small, odd, the largest bound and oversized batches (SQLite binds the first three as
    padded VALUES, the last as JSON): the new ids are returned and counted, known ones not."""
    await configured_user(store)
    await store.record(usage("r0000"))
    counted = await store.record_many([usage(f"r{i:04d}") for i in range(size)])
    assert counted == {f"r{i:04d}" for i in range(1, size)}
    assert await usage_count(store) == size
    assert (await store.usage_totals()).requests == size


async def test_usage_recorded_while_a_transaction_is_open_is_not_part_of_it(
        store: Store) -> None:
    """A batch recorded during another write transaction survives that transaction's rollback."""
    await configured_user(store)
    assert isinstance(store, SqlStore)
    results: list[bool] = []

    async def record() -> None:
        results.append(await store.record(usage("r1")))

    async def record_then_roll_back(tg: anyio.abc.TaskGroup) -> None:
        async with store._backend.transaction():
            tg.start_soon(record)
            await anyio.wait_all_tasks_blocked()
            raise RuntimeError("roll back")

    async with anyio.create_task_group() as tg:
        with pytest.raises(RuntimeError, match="roll back"):
            await record_then_roll_back(tg)
    assert results == [True]
    assert await usage_count(store) == 1
    assert (await store.usage_totals()).requests == 1


async def test_usage_without_a_config_is_still_ledgered(store: Store) -> None:
    """Usage of a user with no matching config lands in the ledger and counts nowhere."""
    assert await store.record(usage("r1", user_id="nobody")) is True
    assert (await store.usage_totals(user_id="nobody")).requests == 1


async def test_concurrent_duplicate_records_count_once(store: Store) -> None:
    """Fifty concurrent records of one request id: exactly one True, counter 1."""
    await configured_user(store)
    results: list[bool] = []

    async def record() -> None:
        results.append(await store.record(usage("same")))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(record)
    assert sorted(results) == [False] * 49 + [True]
    assert await usage_count(store) == 1


async def test_overlapping_batches_in_opposite_orders_do_not_deadlock(store: Store) -> None:
    """Batches touching the same rows in reverse orders all commit; every id counts once."""
    providers = ("openai", "anthropic", "ollama", "tgi")
    await configured_user(store, providers=providers)
    events = [usage(f"r{i:03d}", provider=providers[i % 4]) for i in range(200)]

    async def write(batch_no: int) -> None:
        batch = events if batch_no % 2 else list(reversed(events))
        await store.record_many(batch[batch_no:] + batch[:batch_no])

    async with anyio.create_task_group() as tg:
        for batch_no in range(8):
            tg.start_soon(write, batch_no)
    assert [await usage_count(store, provider=p) for p in providers] == [50, 50, 50, 50]
    assert (await store.usage_totals()).requests == 200


async def test_ledger_row_and_counter_commit_together(store: Store) -> None:
    """After any mix of records, the counter equals the ledger rows of that config."""
    await configured_user(store, providers=("openai", "anthropic"))
    for i in range(30):
        await store.record_many([usage(f"a{i}"), usage(f"b{i % 7}", provider="anthropic")])
    for provider in ("openai", "anthropic"):
        ledger = await store.usage_by_provider_model(user_id="ada")
        rows = sum(u.requests for u in ledger if u.provider == provider)
        assert await usage_count(store, provider=provider) == rows


async def test_config_changes_and_usage_together_do_not_deadlock(store: Store) -> None:
    """set_default flipping providers while batches count usage on them: all commit."""
    providers = ("openai", "anthropic", "ollama")
    await configured_user(store, providers=providers)

    async def flip_defaults() -> None:
        for i in range(30):
            await store.set_default("ada", providers[i % 3], "m")

    async def count_usage(worker: int) -> None:
        for i in range(10):
            await store.record_many([usage(f"w{worker}-{i}-{p}", provider=p)
                                     for p in reversed(providers)])

    async with anyio.create_task_group() as tg:
        tg.start_soon(flip_defaults)
        for worker in range(4):
            tg.start_soon(count_usage, worker)
    assert [await usage_count(store, provider=p) for p in providers] == [40, 40, 40]
