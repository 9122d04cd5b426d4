"""The user channel end to end: a real BeamishServer, real WebSockets, jobs on the echo
provider — own topic only, live job pushes, enqueue, and one listener for the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from beamish.application import Application
from beamish.chat.job_feed import JobFeed, JobPush, TooManyChannelsError, job_payload
from beamish.jobs import JobEvent
from beamish.runtime import call, start
from beamish.server.serve import BeamishServer
from beamish.settings import Settings
from beamish.store import NewTemplateVersion
from tests._inbox import Inbox
from tests._serve import token
from tests.channels._phx import PhxClient, ok
from tests.jobs._app import Events

pytestmark = pytest.mark.anyio


def _url(beamish: BeamishServer, user: str) -> str:
    return (f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token(user)}"
            "&vsn=2.0.0")


async def _pushes(client: PhxClient, topic: str, job_id: int) -> list[dict[str, Any]]:
    """The job pushes of ``job_id`` up to and including its completion."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["event"] != "completed":
        frame = await client.expect(lambda f: f[2] == topic and f[3] == "job"
                                    and f[4]["job_id"] == job_id)
        seen.append(frame[4])
    return seen


async def test_a_user_joins_only_their_own_topic(beamish: BeamishServer) -> None:
    """ada joins user:ada; user:bob is refused unauthorized, and follows nothing."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        _, mine = await client.join("user:ada")
        assert mine[4] == ok({"user_id": "ada"})
        _, theirs = await client.join("user:bob")
        assert theirs[4]["status"] == "error"
        assert theirs[4]["response"]["reason"] == "unauthorized"
        assert (beamish.job_feed.followers("ada"), beamish.job_feed.followers("bob")) == (1, 0)


async def test_job_state_changes_are_pushed_without_prompt_content(
        beamish: BeamishServer) -> None:
    """A job enqueued in Python is pushed queued, started, completed to its user only."""
    async with connect(_url(beamish, "ada")) as ada_ws, connect(_url(beamish, "bob")) as bob_ws:
        ada, bob = PhxClient(ada_ws), PhxClient(bob_ws)
        await ada.join("user:ada")
        await bob.join("user:bob")
        handle = await beamish.runtime.jobs.enqueue(prompt="secret words", user_id="ada")
        seen = await _pushes(ada, "user:ada", handle.job_id)
        other = await beamish.runtime.jobs.enqueue(prompt="x", user_id="bob")
        [*_, last] = await _pushes(bob, "user:bob", other.job_id)
    assert [(p["event"], p["status"], p["state"]) for p in seen] == [
        ("queued", "pending", "available"), ("started", "processing", "executing"),
        ("completed", "completed", "completed")]
    assert {p["output_id"] for p in seen} == {handle.output_id}
    assert seen[-1]["attempt"] == 1
    assert "secret" not in str(seen)
    assert last["job_id"] == other.job_id  # bob saw his own job, and ada's did not reach him


async def test_enqueue_on_the_channel_replies_with_the_handle(beamish: BeamishServer) -> None:
    """enqueue → ok with the job handle, then the job's pushes; a template job renders."""
    await beamish.runtime.templates.create_version(NewTemplateVersion(
        name="digest", prompt="Summarise {{ topic }}", output_format="markdown"))
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("user:ada")
        reply = await client.call("user:ada", "enqueue",
                                  {"template": "digest", "variables": {"topic": "tides"}},
                                  join_ref)
        assert reply[4]["status"] == "ok"
        handle = reply[4]["response"]
        assert (handle["status"], handle["created"]) == ("pending", True)
        await _pushes(client, "user:ada", handle["job_id"])
    output = await beamish.runtime.jobs.get_output(handle["output_id"], user_id="ada")
    assert (output.status, output.prompt, output.format) == (
        "completed", "Summarise tides", "markdown")


@pytest.mark.parametrize(("payload", "reason", "said"), [
    ({"template": "digest", "variables": {}}, "invalid_variables", "topic"),
    ({"template": "nope"}, "template_not_found", "nope"),
    ({"prompt": "x", "queue": "nope"}, "bad_request", "queue"),
    ({"prompt": "x", "user_id": "bob"}, "bad_request", "user_id"),
    ({"prompt": "x", "surprise": 1}, "bad_request", "surprise"),
    ({"variables": {"topic": "x"}}, "missing_prompt", "no template and no prompt"),
])
async def test_a_bad_enqueue_is_a_typed_error_reply(beamish: BeamishServer, payload: Any,
                                                    reason: str, said: str) -> None:
    """Each bad enqueue gets {reason, detail} naming what is wrong; nothing is queued."""
    await beamish.runtime.templates.create_version(NewTemplateVersion(
        name="digest", prompt="Summarise {{ topic }}",
        variables_schema={"type": "object", "required": ["topic"]}))
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("user:ada")
        reply = await client.call("user:ada", "enqueue", payload, join_ref)
    assert reply[4]["status"] == "error"
    assert reply[4]["response"]["reason"] == reason
    assert said in reply[4]["response"]["detail"]
    assert (await beamish.runtime.jobs.list_outputs("ada")).outputs == ()


async def test_one_subscription_serves_every_channel_until_the_last_leaves(
        beamish: BeamishServer) -> None:
    """The feed subscribes on the first join and unsubscribes when the last channel ends."""
    feed = beamish.job_feed
    assert not feed.subscribed
    async with connect(_url(beamish, "ada")) as ada_ws, connect(_url(beamish, "bob")) as bob_ws:
        await PhxClient(ada_ws).join("user:ada")
        bob = PhxClient(bob_ws)
        bob_ref, _ = await bob.join("user:bob")
        assert feed.subscribed
        assert (feed.followers("ada"), feed.followers("bob")) == (1, 1)
        left = await bob.call("user:bob", "phx_leave", {}, bob_ref)
        assert left[4] == ok({})
    async with connect(_url(beamish, "ada")) as ws:  # a new socket: the old ones are gone
        await PhxClient(ws).join("user:ada")
        assert feed.followers("ada") == 1
        assert feed.followers("bob") == 0


async def test_the_feed_fans_out_by_user_within_its_bound(tmp_path: Path) -> None:
    """Past the bound per user a channel is refused (other users are not); each follower of
    a user gets that user's events and no other's; one subscription serves them all."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}")
    async with Application(settings) as app:
        events = Events()
        app.jobs.subscribe(events)
        feed = JobFeed(app, max_channels_per_user=2)
        ada1, ada2, ada3, bob = [await start(Inbox, None) for _ in range(4)]
        stops = [feed.follow("ada", ada1), feed.follow("ada", ada2)]
        with pytest.raises(TooManyChannelsError):
            feed.follow("ada", ada3)
        feed.follow("bob", bob)
        handle = await app.jobs.enqueue(prompt="hi", user_id="ada")
        await events.wait("completed", job_id=handle.job_id)
        got = [await call(ref, "seen") for ref in (ada1, ada2, ada3, bob)]
        for stop in stops:
            stop()
        assert (feed.followers("ada"), feed.subscribed) == (0, True)
    kinds = [[m.payload["event"] for m in seen] for seen in got]
    assert kinds == [["queued", "started", "completed"]] * 2 + [[], []]
    assert feed.dropped == 0


def test_a_push_carries_state_and_never_the_user_or_prompt() -> None:
    """job_payload maps each event to its state and leaves out the user id."""
    event = JobEvent(event="retried", job_id=3, output_id="o", user_id="ada",
                     status="pending", attempt=1, error="timeout")
    payload = job_payload(event)
    assert payload == {"event": "retried", "job_id": 3, "output_id": "o", "status": "pending",
                       "attempt": 1, "error": "timeout", "state": "retryable"}
    assert JobPush(payload).payload is payload
