"""The job tables on both backends: every state transition, leases, uniqueness, pruning."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from beamish.store import NotFoundError, Store, open_store
from beamish.store._jobs import LOST_LAST_ATTEMPT, RELEASED
from beamish.store.job_models import JobRecord, OutputFilter
from tests.jobs._app import WAIT_S
from tests.jobs.helpers import T0, lease, new_job, result

pytestmark = pytest.mark.anyio


async def test_a_job_is_available_and_its_output_pending(store: Store) -> None:
    """A job due now is available; its output row is pending with the request stored."""
    enqueued = await store.enqueue_job(new_job())
    assert enqueued.created
    assert enqueued.job.state == "available"
    output = await store.get_output(enqueued.job.output_id)
    assert (output.status, output.job_id, output.request["prompt"]) == (
        "pending", enqueued.job.id, "hello")


async def test_a_job_due_later_is_scheduled_and_not_claimed_before(store: Store) -> None:
    """A job with a later run time is scheduled, and claimed only once it is due."""
    job = (await store.enqueue_job(new_job(run_at=T0 + timedelta(seconds=60)))).job
    assert job.state == "scheduled"
    assert await store.claim_jobs("default", limit=5, leased_by="w1", lease_until=lease(),
                                  now=T0) == []
    later = T0 + timedelta(seconds=60)
    claimed = await store.claim_jobs("default", limit=5, leased_by="w1",
                                     lease_until=later + timedelta(seconds=30), now=later)
    assert [j.id for j in claimed] == [job.id]


async def test_a_claim_leases_jobs_by_priority_then_age_and_marks_outputs(
        store: Store) -> None:
    """A claim takes up to its limit, lowest priority number first, then the oldest; the
    jobs are executing under the lease and their outputs processing."""
    low = (await store.enqueue_job(new_job(priority=5))).job
    first = (await store.enqueue_job(new_job(priority=-1))).job
    second = (await store.enqueue_job(new_job(priority=-1))).job
    other_queue = (await store.enqueue_job(new_job(queue="high"))).job
    claimed = await store.claim_jobs("default", limit=2, leased_by="w1", lease_until=lease(),
                                     now=T0)
    assert [j.id for j in claimed] == [first.id, second.id]
    assert all((j.state, j.attempt, j.leased_by, j.lease_until) ==
               ("executing", 1, "w1", lease()) for j in claimed)
    assert (await store.get_output(first.output_id)).status == "processing"
    assert (await store.get_job(low.id)).state == "available"
    assert (await store.get_job(other_queue.id)).state == "available"


async def test_completing_writes_the_output_once_and_only_for_the_lease_holder(
        store: Store) -> None:
    """The lease holder's result completes job and output; another worker's is ignored."""
    job = (await store.enqueue_job(new_job())).job
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    assert await store.finish_jobs([result(claimed, "completed", leased_by="w2",
                                           raw_response="stolen")]) == set()
    written = await store.finish_jobs([result(claimed, "completed", raw_response="hi",
                                              parsed_output="hi", model="m",
                                              prompt_tokens=2, completion_tokens=3)])
    assert written == {job.id}
    again = await store.finish_jobs([result(claimed, "completed", raw_response="twice")])
    assert again == set()
    output = await store.get_output(job.output_id)
    assert (output.status, output.raw_response, output.prompt_tokens,
            output.completion_tokens) == ("completed", "hi", 2, 3)
    assert (await store.get_job(job.id)).state == "completed"


async def test_a_retryable_failure_makes_the_job_due_again_and_the_output_pending(
        store: Store) -> None:
    """A retryable end puts the job back at its retry time; the next claim is attempt 2."""
    job = (await store.enqueue_job(new_job())).job
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    retry_at = T0 + timedelta(seconds=7)
    await store.finish_jobs([result(claimed, "retryable", run_at=retry_at, error="timeout")])
    record = await store.get_job(job.id)
    assert (record.state, record.run_at, record.last_error) == ("retryable", retry_at,
                                                                "timeout")
    assert (await store.get_output(job.output_id)).status == "pending"
    assert await store.claim_jobs("default", limit=1, leased_by="w1", lease_until=lease(),
                                  now=T0) == []
    [again] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                     lease_until=retry_at + timedelta(seconds=30), now=retry_at)
    assert again.attempt == 2


async def test_a_permanent_failure_discards_the_job_and_fails_the_output(store: Store) -> None:
    """A discarded job's output is failed with the error."""
    job = (await store.enqueue_job(new_job())).job
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    await store.finish_jobs([result(claimed, "discarded", error="BadRequestError: no")])
    output = await store.get_output(job.output_id)
    assert (output.status, output.error) == ("failed", "BadRequestError: no")
    assert (await store.get_job(job.id)).state == "discarded"


async def test_an_expired_lease_makes_the_job_claimable_again(store: Store) -> None:
    """A job whose worker stopped renewing is claimed by another once the lease expires,
    and the first worker's late result is then ignored."""
    job = (await store.enqueue_job(new_job())).job
    await store.claim_jobs("default", limit=1, leased_by="w1", lease_until=lease(10), now=T0)
    assert await store.claim_jobs("default", limit=1, leased_by="w2", lease_until=lease(40),
                                  now=T0 + timedelta(seconds=9)) == []
    expired = T0 + timedelta(seconds=11)
    [rescued] = await store.claim_jobs("default", limit=1, leased_by="w2",
                                       lease_until=expired + timedelta(seconds=30), now=expired)
    assert (rescued.id, rescued.attempt, rescued.leased_by) == (job.id, 2, "w2")
    assert await store.finish_jobs([result(rescued, "completed", leased_by="w1")]) == set()
    assert await store.finish_jobs([result(rescued, "completed", leased_by="w2")]) == {job.id}


async def test_a_claim_takes_due_and_lease_lost_jobs_together_in_claim_order(
        store: Store) -> None:
    """Jobs whose lease expired and jobs that are due are one list to a claim: it takes
    the best ``limit`` of both by priority, then age, and leaves the rest."""
    lost = [(await store.enqueue_job(new_job(priority=p))).job for p in (0, 0)]
    later = (await store.enqueue_job(new_job(priority=2))).job
    await store.claim_jobs("default", limit=2, leased_by="w1", lease_until=lease(10), now=T0)
    due = (await store.enqueue_job(new_job(priority=1))).job
    await store.enqueue_job(new_job(priority=3))
    expired = T0 + timedelta(seconds=11)
    claimed = await store.claim_jobs("default", limit=3, leased_by="w2",
                                     lease_until=expired + timedelta(seconds=30), now=expired)
    assert [j.id for j in claimed] == [lost[0].id, lost[1].id, due.id]
    assert [j.attempt for j in claimed] == [2, 2, 1]
    assert (await store.get_job(later.id)).state == "available"


async def test_one_finish_writes_each_result_only_where_its_holder_holds_the_lease(
        store: Store) -> None:
    """A group commit of several results finishes each job its own way (completed, or
    retryable at its new run time) and leaves the job another worker holds as it is."""
    done, retried, taken = [(await store.enqueue_job(new_job())).job for _ in range(3)]
    await store.claim_jobs("default", limit=2, leased_by="w1", lease_until=lease(), now=T0)
    await store.claim_jobs("default", limit=1, leased_by="w2", lease_until=lease(), now=T0)
    retry_at = T0 + timedelta(seconds=90)
    written = await store.finish_jobs([
        result(done, "completed"), result(retried, "retryable", run_at=retry_at, error="x"),
        result(taken, "completed")])
    assert written == {done.id, retried.id}
    assert (await store.get_job(done.id)).state == "completed"
    again = await store.get_job(retried.id)
    assert (again.state, again.run_at, again.last_error, again.finished_at) == (
        "retryable", retry_at, "x", None)
    assert ((await store.get_job(taken.id)).state,
            (await store.get_output(taken.output_id)).status) == ("executing", "processing")
    assert [(await store.get_output(j.output_id)).status for j in (done, retried)] == [
        "completed", "pending"]


async def test_an_expired_lease_on_the_last_attempt_discards_the_job(store: Store) -> None:
    """Jobs whose last attempt's worker died are discarded, their outputs failed, not
    re-run; the claim that discarded them reports them in id order (with the attempt each
    lost and the reason)."""
    jobs = [(await store.enqueue_job(new_job(max_attempts=1))).job for _ in range(3)]
    await store.claim_jobs("default", limit=3, leased_by="w1", lease_until=lease(10), now=T0)
    later = T0 + timedelta(seconds=11)
    discarded: list[JobRecord] = []
    assert await store.claim_jobs("default", limit=1, leased_by="w2",
                                  lease_until=later + timedelta(seconds=30), now=later,
                                  discarded=discarded) == []
    for job in jobs:
        output = await store.get_output(job.output_id)
        assert (output.status, output.error) == ("failed", LOST_LAST_ATTEMPT)
    assert [(j.id, j.output_id, j.state, j.attempt, j.last_error) for j in discarded] == [
        (job.id, job.output_id, "discarded", 1, LOST_LAST_ATTEMPT) for job in jobs]
    assert await store.claim_jobs("default", limit=1, leased_by="w2",
                                  lease_until=later + timedelta(seconds=30), now=later,
                                  discarded=discarded) == []
    assert len(discarded) == 3  # reported once: the next claim finds nothing lost


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_discard_skips_a_lost_job_another_transaction_holds(
        store: Store, store_url: str) -> None:
    """On PostgreSQL a claim discards the lost last attempts no other transaction holds,
    without waiting for the one that is held; the claim after its holder is done discards
    that one."""
    jobs = [(await store.enqueue_job(new_job(max_attempts=1))).job for _ in range(3)]
    await store.claim_jobs("default", limit=3, leased_by="w1", lease_until=lease(10), now=T0)
    later = T0 + timedelta(seconds=11)

    async def discard() -> list[int]:
        discarded: list[JobRecord] = []
        async with asyncio.timeout(WAIT_S):  # it would wait for the held row for ever
            await store.claim_jobs("default", limit=1, leased_by="w2",
                                   lease_until=later + timedelta(seconds=30), now=later,
                                   discarded=discarded)
        return [job.id for job in discarded]

    holder = await asyncpg.connect(store_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", jobs[1].id)
            assert await discard() == [jobs[0].id, jobs[2].id]
        assert await discard() == [jobs[1].id]
    finally:
        await holder.close()


async def test_renewing_keeps_held_leases_and_reports_lost_ones(store: Store) -> None:
    """Renewal extends the caller's leases and leaves out jobs it no longer holds."""
    held = (await store.enqueue_job(new_job())).job
    cancelled = (await store.enqueue_job(new_job())).job
    await store.claim_jobs("default", limit=2, leased_by="w1", lease_until=lease(10), now=T0)
    await store.cancel_job(cancelled.id)
    renewed = await store.renew_leases([held.id, cancelled.id], leased_by="w1",
                                       lease_until=lease(60))
    assert renewed == {held.id}
    assert (await store.get_job(held.id)).lease_until == lease(60)
    assert await store.renew_leases([held.id], leased_by="w2", lease_until=lease(90)) == set()


async def test_releasing_gives_back_only_the_caller_s_leases(store: Store) -> None:
    """A stopping process gives back the leases it holds: those jobs are due again with
    their outputs pending; another holder's job and a finished one stay as they are."""
    mine = [(await store.enqueue_job(new_job())).job for _ in range(3)]
    other = (await store.enqueue_job(new_job())).job
    await store.claim_jobs("default", limit=3, leased_by="w1", lease_until=lease(), now=T0)
    await store.claim_jobs("default", limit=1, leased_by="w2", lease_until=lease(), now=T0)
    done = mine[2]
    await store.finish_jobs([result(done, "completed")])
    ids = [job.id for job in (*mine, other)]
    released = await store.release_jobs(ids, leased_by="w1")
    assert [(j.id, j.state, j.attempt, j.last_error) for j in released] == [
        (job.id, "retryable", 1, RELEASED) for job in mine[:2]]
    for job in mine[:2]:
        after = await store.get_job(job.id)
        assert (after.state, after.leased_by, after.attempt) == ("retryable", None, 1)
        assert (await store.get_output(job.output_id)).status == "pending"
    assert (await store.get_job(other.id)).leased_by == "w2"
    assert (await store.get_job(done.id)).state == "completed"
    assert await store.release_jobs([], leased_by="w1") == []


async def test_cancel_stops_pending_and_running_jobs_and_leaves_finished_ones(
        store: Store) -> None:
    """Cancelling a pending or executing job cancels it and its output (saying what it
    was); a finished job stays as it is; another user's job is not found."""
    running = (await store.enqueue_job(new_job())).job  # the older: claimed below
    pending = (await store.enqueue_job(new_job())).job
    await store.claim_jobs("default", limit=1, leased_by="w1", lease_until=lease(), now=T0)
    with pytest.raises(NotFoundError):
        await store.cancel_job(pending.id, user_id="eve")
    first = await store.cancel_job(pending.id, user_id="ada")
    second = await store.cancel_job(running.id)
    assert first is not None
    assert second is not None
    assert (first.was, second.was) == ("available", "executing")
    assert (first.job.state, second.job.state) == ("cancelled", "cancelled")
    assert (await store.get_output(pending.output_id)).status == "cancelled"
    assert (await store.get_output(running.output_id)).status == "cancelled"
    assert await store.cancel_job(pending.id) is None
    with pytest.raises(NotFoundError):
        await store.cancel_job(10_000)


async def test_a_unique_key_returns_the_unfinished_job_and_frees_once_it_finishes(
        store: Store) -> None:
    """A second enqueue with the key of a pending job returns that job and writes no
    output; once the job finished, the key makes a new job."""
    first = await store.enqueue_job(new_job(unique_key="digest:ada"))
    again = await store.enqueue_job(new_job(unique_key="digest:ada"))
    assert (again.created, again.job.id, again.job.output_id) == (
        False, first.job.id, first.job.output_id)
    assert len((await store.list_outputs("ada")).outputs) == 1
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    await store.finish_jobs([result(claimed, "completed")])
    later = await store.enqueue_job(new_job(unique_key="digest:ada"))
    assert later.created
    assert later.job.id != first.job.id


async def test_a_unique_key_is_one_users_and_never_another_users_job(
        store: Store) -> None:
    """The same key from two users makes two jobs, each its user's, alone and in one
    batch; each user's repeat still answers that user's own job."""
    ada = await store.enqueue_job(new_job(unique_key="daily"))
    bob = await store.enqueue_job(new_job(unique_key="daily", user_id="bob"))
    assert (ada.created, bob.created) == (True, True)
    assert (bob.job.user_id, bob.job.id != ada.job.id) == ("bob", True)
    batch = await store.enqueue_jobs([new_job(unique_key="weekly", user_id=user)
                                      for user in ("ada", "bob", "ada", "eve")])
    assert [(e.created, e.job.user_id) for e in batch] == [
        (True, "ada"), (True, "bob"), (False, "ada"), (True, "eve")]
    assert batch[2].job.id == batch[0].job.id
    again = await store.enqueue_job(new_job(unique_key="daily", user_id="bob"))
    assert (again.created, again.job.id) == (False, bob.job.id)
    assert [o.output_id for o in (await store.list_outputs("bob")).outputs] == [
        batch[1].job.output_id, bob.job.output_id]


async def test_concurrent_enqueues_of_one_key_make_one_job(store_url: str) -> None:
    """Many enqueues of one key at once, from two stores (separate connections), make one
    job, and every caller gets its id."""
    async with open_store(store_url) as one, open_store(store_url) as two:
        calls = [(one if n % 2 else two).enqueue_job(new_job(unique_key="k"))
                 for n in range(40)]
        batch = await one.enqueue_jobs([new_job(unique_key="k") for _ in range(5)])
        enqueued = [*await asyncio.gather(*calls), *batch]
    assert len({e.job.id for e in enqueued}) == 1
    assert sum(e.created for e in enqueued) == 1
    async with open_store(store_url) as store:
        assert len((await store.list_outputs("ada")).outputs) == 1


async def test_concurrent_claims_never_lease_a_job_twice(store_url: str) -> None:
    """Claimers on separate connections racing over one queue each get distinct jobs."""
    async with open_store(store_url) as one, open_store(store_url) as two:
        await one.enqueue_jobs([new_job() for _ in range(30)])
        claims = await asyncio.gather(*(
            (one if n % 2 else two).claim_jobs("default", limit=4, leased_by=f"w{n}",
                                               lease_until=lease(), now=T0)
            for n in range(10)))
    ids = [job.id for claim in claims for job in claim]
    assert len(ids) == len(set(ids)) == 30


async def test_pruning_deletes_old_finished_jobs_and_keeps_outputs(store: Store) -> None:
    """Finished jobs older than the cut-off go; unfinished ones and every output stay."""
    done = (await store.enqueue_job(new_job())).job
    waiting = (await store.enqueue_job(new_job())).job
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    await store.finish_jobs([result(claimed, "completed")])
    finished_at = (await store.get_job(done.id)).finished_at
    assert finished_at is not None
    assert await store.prune_jobs(finished_at) == 0
    assert await store.prune_jobs(finished_at + timedelta(seconds=1)) == 1
    with pytest.raises(NotFoundError):
        await store.get_job(done.id)
    assert (await store.get_job(waiting.id)).state == "available"
    assert (await store.get_output(done.output_id)).status == "completed"


async def test_outputs_page_newest_first_filtered_by_status_and_rating(store: Store) -> None:
    """Outputs come newest first a page at a time; filters narrow them; pages do not
    overlap; other users' outputs never appear."""
    jobs = [(await store.enqueue_job(new_job())).job for _ in range(5)]
    await store.enqueue_job(new_job(user_id="eve"))
    first = await store.list_outputs("ada", limit=2)
    second = await store.list_outputs("ada", limit=2, cursor=first.next_cursor)
    third = await store.list_outputs("ada", limit=2, cursor=second.next_cursor)
    seen = [o.output_id for page in (first, second, third) for o in page.outputs]
    assert seen == [j.output_id for j in reversed(jobs)]
    assert third.next_cursor is None
    await store.set_feedback(jobs[0].output_id, "ada", "down", "wrong")
    rated = await store.list_outputs("ada", filters=OutputFilter(rating="down"))
    assert [o.output_id for o in rated.outputs] == [jobs[0].output_id]
    pending = await store.list_outputs("ada", filters=OutputFilter(status="completed"))
    assert pending.outputs == ()


async def test_feedback_is_one_per_user_and_output_and_counted_by_version_and_model(
        store: Store) -> None:
    """A second rating replaces the first; stats count per template version and model, of
    completed outputs only (a rating of a pending output, which ``Jobs`` refuses and older
    versions took, is left out)."""
    job = (await store.enqueue_job(new_job(template_name="digest", template_version=2))).job
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    await store.finish_jobs([result(claimed, "completed", model="m1")])
    waiting = (await store.enqueue_job(new_job(template_name="digest",
                                               template_version=2))).job
    await store.set_feedback(waiting.output_id, "ada", "up")
    await store.set_feedback(job.output_id, "ada", "up")
    await store.set_feedback(job.output_id, "ada", "down", "too long")
    await store.set_feedback(job.output_id, "bob", "down")
    feedback = await store.get_feedback(job.output_id, "ada")
    assert feedback is not None
    assert (feedback.rating, feedback.reason) == ("down", "too long")
    [stats] = await store.feedback_stats(template_name="digest")
    assert (stats.template_version, stats.model, stats.up, stats.down) == (2, "m1", 0, 2)


async def test_unfinished_jobs_are_counted_per_user(store: Store) -> None:
    """Each user's pending and running jobs are counted; finished ones are not."""
    await store.enqueue_jobs([new_job(), new_job(), new_job(user_id="bob")])
    [claimed] = await store.claim_jobs("default", limit=1, leased_by="w1",
                                       lease_until=lease(), now=T0)
    await store.finish_jobs([result(claimed, "completed")])
    assert await store.count_unfinished_jobs(["ada", "bob", "eve"]) == {"ada": 1, "bob": 1}


async def test_unique_keys_held_by_unfinished_jobs_are_found_per_user(store: Store) -> None:
    """A key is held while its user's job is pending or running; another user's same key,
    a finished job's key and a key never used are not."""
    await store.enqueue_jobs([new_job(unique_key="a"), new_job(unique_key="b"),
                              new_job(unique_key="b", user_id="bob", queue="low")])
    [claimed] = await store.claim_jobs("low", limit=1, leased_by="w1", lease_until=lease(),
                                       now=T0)
    await store.finish_jobs([result(claimed, "completed")])
    asked = [("ada", "a"), ("ada", "b"), ("bob", "b"), ("bob", "a"), ("eve", "a"),
             ("ada", "c")]
    assert await store.held_unique_keys(asked) == {("ada", "a"), ("ada", "b")}
    assert await store.held_unique_keys([]) == set()


async def _listed(store: Store, user_id: str, filters: OutputFilter, *,
                  limit: int) -> tuple[list[str], int]:
    """Every output id ``list_outputs`` gives ``filters``, paging with ``next_cursor`` by
    ``limit``, and the number of pages it took."""
    ids: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await store.list_outputs(user_id, filters=filters, cursor=cursor, limit=limit)
        ids += [o.output_id for o in page.outputs]
        pages += 1
        if (cursor := page.next_cursor) is None:
            return ids, pages


async def test_outputs_filter_by_template_and_model_and_page_with_the_filter(
        store: Store) -> None:
    """template_name and model each keep only the outputs that match, together too; a
    cursor pages on within the same filter (outputs that do not match, made between those
    that do, never appear on a later page); other users' never appear."""
    plan = [("digest", "m1"), (None, "m1"), ("digest", "m2"), ("digest", "m1"),
            ("other", "m1"), ("digest", "m1"), ("digest", None)]  # None: still pending
    jobs = [(await store.enqueue_job(new_job(template_name=template))).job
            for template, _ in plan]
    await store.enqueue_job(new_job(user_id="eve", template_name="digest"))
    claimed = {j.id: j for j in await store.claim_jobs(
        "default", limit=len(plan) - 1, leased_by="w1", lease_until=lease(), now=T0)}
    assert await store.finish_jobs([
        result(claimed[job.id], "completed", model=model)
        for job, (_, model) in zip(jobs, plan, strict=True) if model is not None]) == set(claimed)
    newest_first = [o.output_id for o in (await store.list_outputs("ada")).outputs]
    assert len(newest_first) == len(plan)

    def matching(template: str | None, model: str | None) -> list[str]:
        wanted = {job.output_id for job, (t, m) in zip(jobs, plan, strict=True)
                  if template in (None, t) and model in (None, m)}
        return [i for i in newest_first if i in wanted]

    for template, model, count in (("digest", None, 5), (None, "m1", 5), (None, "m2", 1),
                                   ("digest", "m1", 3), ("other", "m2", 0),
                                   ("nope", None, 0)):
        filters = OutputFilter(template_name=template, model=model)
        whole = await store.list_outputs("ada", filters=filters)
        assert [o.output_id for o in whole.outputs] == matching(template, model)
        assert (len(whole.outputs), whole.next_cursor) == (count, None)
        assert all(o.user_id == "ada" for o in whole.outputs)
        paged, pages = await _listed(store, "ada", filters, limit=1)
        assert (paged, pages) == (matching(template, model), max(count, 1))
    both = OutputFilter(template_name="digest", model="m1", status="completed")
    assert (await _listed(store, "ada", both, limit=2)) == (matching("digest", "m1"), 2)
    rated = OutputFilter(template_name="digest", rating="up")
    await store.set_feedback(jobs[2].output_id, "ada", "up")
    await store.set_feedback(jobs[1].output_id, "ada", "up")
    assert (await _listed(store, "ada", rated, limit=1)) == ([jobs[2].output_id], 1)
