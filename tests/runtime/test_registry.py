"""Registry: unique and duplicate keys, via-names, automatic unregistration, dispatch, death."""

from __future__ import annotations

from typing import Any

import pytest

from beamish.runtime import (
    KILL,
    KILLED,
    SHUTDOWN,
    Actor,
    ActorRef,
    AlreadyStartedError,
    BeamishRuntimeError,
    Caller,
    InvalidOptionError,
    Node,
    NoProcessError,
    Registry,
    call,
    cast,
    child_spec,
    exit,
    monitor,
    open_inbox,
    send,
    start,
    stop,
    via,
    which_children,
)
from tests.runtime._support import down_of

pytestmark = pytest.mark.anyio


class Member(Actor):
    """Registers itself under each (registry, key, value) of its arg; echoes calls."""

    def init(self, arg: list[tuple[Any, Any, Any]] | None) -> None:
        for registry, key, value in arg or ():
            Registry.register(registry, key, value)
        self.seen: list[Any] = []

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "seen":
            return self.seen
        if isinstance(request, tuple) and request[0] == "unregister":
            Registry.unregister(request[1], request[2])
            return "ok"
        return ("echo", request)

    def handle_cast(self, request: Any) -> None:
        self.stop(request)

    def handle_info(self, message: Any) -> None:
        self.seen.append(message)


async def wait_dead(ref: ActorRef) -> None:
    async with open_inbox() as inbox:
        mref = monitor(ref)
        await down_of(inbox, mref)


# -- unique keys ------------------------------------------------------------------------------


async def test_unique_register_and_lookup(node: Node) -> None:
    """An actor registered under a unique key is found by lookup and whereis, with its value."""
    await start(Registry, "unique", name="reg")
    ref = await start(Member, [("reg", "alice", {"role": "admin"})])
    assert Registry.lookup("reg", "alice") == [(ref, {"role": "admin"})]
    assert Registry.whereis("reg", "alice") is ref
    assert Registry.whereis("reg", "bob") is None
    assert Registry.lookup("reg", "bob") == []


async def test_default_kind_is_unique(node: Node) -> None:
    """A Registry started without an argument has unique keys."""
    reg = await start(Registry)
    await start(Member, [(reg, "k", 1)])
    with pytest.raises(AlreadyStartedError):
        await start(Member, [(reg, "k", 2)])


async def test_unique_duplicate_registration_raises(node: Node) -> None:
    """Registering a taken unique key raises AlreadyStartedError naming the key and holder."""
    reg = await start(Registry, "unique")
    holder = await start(Member, [(reg, "alice", 1)])
    with pytest.raises(AlreadyStartedError, match="name 'alice' is already taken") as info:
        Registry.register(reg, "alice", 2, proc=await start(Member))
    assert info.value.existing is holder
    assert Registry.lookup(reg, "alice") == [(holder, 1)]


async def test_invalid_kind_names_the_field(node: Node) -> None:
    """A Registry started with a kind other than unique/duplicate fails naming 'keys'."""
    with pytest.raises(InvalidOptionError, match="invalid keys: 'sometimes'"):
        await start(Registry, "sometimes")


async def test_register_outside_an_actor_needs_proc(node: Node) -> None:
    """Registry.register from plain code without proc= raises a clear error."""
    reg = await start(Registry, "unique")
    with pytest.raises(BeamishRuntimeError, match=r"Registry\.register needs an actor"):
        Registry.register(reg, "k")


async def test_register_a_dead_actor_is_refused(node: Node) -> None:
    """A dead actor cannot be registered."""
    reg = await start(Registry, "unique")
    dead = await start(Member)
    await stop(dead)
    with pytest.raises(BeamishRuntimeError, match="is not alive and cannot be registered"):
        Registry.register(reg, "k", proc=dead)
    assert Registry.count(reg) == 0


# -- automatic unregistration -----------------------------------------------------------------


async def test_entry_goes_away_when_the_actor_exits(node: Node) -> None:
    """An actor's entries are removed when it exits; the key is free again."""
    reg = await start(Registry, "unique")
    ref = await start(Member, [(reg, "alice", 1), (reg, "alias", 2)])
    assert Registry.count(reg) == 2
    await stop(ref, SHUTDOWN)
    assert Registry.lookup(reg, "alice") == []
    assert Registry.count(reg) == 0
    again = await start(Member, [(reg, "alice", 3)])
    assert Registry.whereis(reg, "alice") is again


async def test_entry_goes_away_when_the_actor_is_killed(node: Node) -> None:
    """A killed actor's entries are removed as well."""
    reg = await start(Registry, "duplicate")
    ref = await start(Member, [(reg, "topic", None)])
    async with open_inbox() as inbox:
        mref = monitor(ref)
        exit(ref, KILL)
        down = await down_of(inbox, mref)
    assert down.reason == KILLED
    assert Registry.lookup(reg, "topic") == []
    assert Registry.count(reg) == 0


async def test_down_after_kill_comes_after_unregistration(node: Node) -> None:
    """A DOWN for a just-killed actor comes after its entries are released, with 'killed'."""
    reg = await start(Registry, "duplicate")
    ref = await start(Member, [(reg, "topic", None)])
    exit(ref, KILL)
    async with open_inbox() as inbox:
        mref = monitor(ref)
        down = await down_of(inbox, mref)
    assert down.reason == KILLED
    assert Registry.count(reg) == 0


async def test_unregister_removes_only_the_callers_entry(node: Node) -> None:
    """unregister drops the calling actor's own entry and leaves others alone."""
    reg = await start(Registry, "duplicate")
    a = await start(Member, [(reg, "topic", "a")])
    b = await start(Member, [(reg, "topic", "b")])
    assert await call(a, ("unregister", reg, "topic")) == "ok"
    assert Registry.lookup(reg, "topic") == [(b, "b")]
    Registry.unregister(reg, "topic", proc=a)  # not registered any more: a no-op
    assert Registry.keys(reg, a) == []


async def test_unregister_in_unique_does_not_drop_another_holder(node: Node) -> None:
    """Unregistering a unique key one does not hold leaves the holder in place."""
    reg = await start(Registry, "unique")
    holder = await start(Member, [(reg, "k", 1)])
    other = await start(Member)
    Registry.unregister(reg, "k", proc=other)
    assert Registry.whereis(reg, "k") is holder


# -- duplicate keys and dispatch --------------------------------------------------------------


async def test_duplicate_keys_hold_many_actors(node: Node) -> None:
    """Under duplicate keys several actors share a key, each with its own value."""
    reg = await start(Registry, "duplicate")
    a = await start(Member, [(reg, "room:1", "a")])
    b = await start(Member, [(reg, "room:1", "b"), (reg, "room:2", "b2")])
    assert Registry.lookup(reg, "room:1") == [(a, "a"), (b, "b")]
    assert Registry.keys(reg, b) == ["room:1", "room:2"]
    assert Registry.keys(reg, a) == ["room:1"]
    assert Registry.count(reg) == 3


async def test_dispatch_calls_fn_with_every_entry(node: Node) -> None:
    """dispatch hands every live (ref, value) under the key to fn and returns True."""
    reg = await start(Registry, "duplicate")
    members = [await start(Member, [(reg, "room", i)]) for i in range(3)]
    seen: list[list[tuple[ActorRef, Any]]] = []

    def broadcast(entries: list[tuple[ActorRef, Any]]) -> None:
        seen.append(entries)
        for ref, value in entries:
            send(ref, ("hello", value))

    assert Registry.dispatch(reg, "room", broadcast) is True
    assert seen == [[(m, i) for i, m in enumerate(members)]]
    assert [await call(m, "seen") for m in members] == [
        [("hello", 0)], [("hello", 1)], [("hello", 2)]
    ]


async def test_dispatch_without_entries_does_not_call_fn(node: Node) -> None:
    """dispatch on a key with no entries returns False and never calls fn."""
    reg = await start(Registry, "duplicate")
    calls: list[Any] = []
    assert Registry.dispatch(reg, "empty", calls.append) is False
    assert calls == []


async def test_dispatch_skips_exited_members(node: Node) -> None:
    """An exited member is not dispatched to."""
    reg = await start(Registry, "duplicate")
    a = await start(Member, [(reg, "room", "a")])
    b = await start(Member, [(reg, "room", "b")])
    await stop(a)
    got: list[list[tuple[ActorRef, Any]]] = []
    assert Registry.dispatch(reg, "room", got.append) is True
    assert got == [[(b, "b")]]


# -- via names --------------------------------------------------------------------------------


async def test_start_under_a_via_name_and_call_through_it(node: Node) -> None:
    """start(name=via(...)) registers the actor as it starts; calls and casts go through it."""
    await start(Registry, "unique", name="sessions")
    ref = await start(Member, name=via("sessions", "s1"))
    assert Registry.whereis("sessions", "s1") is ref
    assert ref.label == via("sessions", "s1")
    assert await call(via("sessions", "s1"), "hi") == ("echo", "hi")
    send(via("sessions", "s1"), "note")
    assert await call(ref, "seen") == ["note"]


async def test_via_name_taken_raises_already_started(node: Node) -> None:
    """Starting a second actor under a taken via name raises AlreadyStartedError."""
    reg = await start(Registry, "unique")
    first = await start(Member, name=via(reg, "s1"))
    with pytest.raises(AlreadyStartedError) as info:
        await start(Member, name=via(reg, "s1"))
    assert info.value.existing is first
    assert Registry.count(reg) == 1


async def test_via_name_is_released_on_exit(node: Node) -> None:
    """When a via-named actor exits its name resolves to nothing and can be reused."""
    reg = await start(Registry, "unique")
    ref = await start(Member, name=via(reg, "s1"))
    await cast(ref, SHUTDOWN)
    await wait_dead(ref)
    with pytest.raises(NoProcessError, match="no live actor has that name"):
        await call(via(reg, "s1"), "hi")
    again = await start(Member, name=via(reg, "s1"))
    assert await call(via(reg, "s1"), "who") == ("echo", "who")
    assert Registry.whereis(reg, "s1") is again


async def test_via_name_on_a_duplicate_registry_is_refused(node: Node) -> None:
    """A via name needs a unique-keys registry; otherwise start fails naming 'name'."""
    reg = await start(Registry, "duplicate")
    with pytest.raises(InvalidOptionError, match="invalid name:"):
        await start(Member, name=via(reg, "s1"))


async def test_failed_init_releases_the_via_name(node: Node) -> None:
    """An actor whose init fails does not keep its via name."""

    class Broken(Actor):
        def init(self, arg: Any) -> None:
            raise ValueError("broken")

    reg = await start(Registry, "unique")
    with pytest.raises(ValueError, match="broken"):
        await start(Broken, name=via(reg, "s1"))
    assert Registry.lookup(reg, "s1") == []
    assert await start(Member, name=via(reg, "s1")) is not None


def test_via_equality_and_hash() -> None:
    """Two via names are equal (and hash alike) when registry and key are."""
    assert via("reg", 1) == via("reg", 1)
    assert hash(via("reg", 1)) == hash(via("reg", 1))
    assert via("reg", 1) != via("other", 1)
    assert via("reg", 1) != via("reg", 2)
    assert repr(via("reg", 1)) == "via('reg', 1)"


# -- registry death ---------------------------------------------------------------------------


async def test_dead_registry_is_unusable_with_a_clear_error(node: Node) -> None:
    """After its Registry exits, every operation on it raises a clear error."""
    reg = await start(Registry, "duplicate")
    member = await start(Member, [(reg, "k", 1)])
    await stop(reg)
    message = "is not a running Registry"
    with pytest.raises(BeamishRuntimeError, match=message):
        Registry.lookup(reg, "k")
    with pytest.raises(BeamishRuntimeError, match=message):
        Registry.register(reg, "k", proc=member)
    with pytest.raises(BeamishRuntimeError, match=message):
        Registry.dispatch(reg, "k", print)
    with pytest.raises(BeamishRuntimeError, match=message):
        Registry.count(reg)
    with pytest.raises(BeamishRuntimeError, match=message):
        Registry.keys(reg, member)
    assert member.alive
    await stop(member)  # its entry's release must not fail on the dead table


async def test_dead_named_registry_gives_no_process(node: Node) -> None:
    """A registry known by a node name raises NoProcessError once it is gone."""
    await start(Registry, "unique", name="sessions")
    await start(Member, name=via("sessions", "s1"))
    await stop("sessions")
    with pytest.raises(NoProcessError, match="'sessions'"):
        Registry.whereis("sessions", "s1")
    with pytest.raises(NoProcessError, match="'sessions'"):
        await call(via("sessions", "s1"), "hi")


async def test_not_a_registry_is_refused(node: Node) -> None:
    """Using an actor that is not a Registry as one raises a clear error."""
    other = await start(Member)
    with pytest.raises(BeamishRuntimeError, match="is not a running Registry"):
        Registry.lookup(other, "k")


async def test_supervised_via_named_child_reregisters_on_restart() -> None:
    """In a tree [Registry, worker named via it], a restarted worker is found under its key."""
    children = [
        child_spec(Registry, "unique", id="registry", name="reg"),
        child_spec(Member, None, id="s1", name=via("reg", "s1")),
    ]
    async with Node(children) as node:
        assert node.root is not None
        first = Registry.whereis("reg", "s1")
        assert first is not None
        async with open_inbox() as inbox:
            mref = monitor(first)
            await cast(first, SHUTDOWN)
            await down_of(inbox, mref)
        await which_children(node.root)  # the root has handled the EXIT
        assert await call(via("reg", "s1"), "hi") == ("echo", "hi")
        second = Registry.whereis("reg", "s1")
        assert second is not None
        assert second is not first
        assert second.restart_count == 1


async def test_entries_lists_every_live_entry(node: Node) -> None:
    """entries() gives (key, ref, value) of every live entry, for both kinds of registry."""
    unique = await start(Registry, "unique")
    dup = await start(Registry, "duplicate")
    a = await start(Member, [(unique, "a", 1), (dup, "topic", "a")])
    b = await start(Member, [(unique, "b", 2), (dup, "topic", "b")])
    assert sorted(Registry.entries(unique), key=str) == sorted(
        [("a", a, 1), ("b", b, 2)], key=str)
    assert {(k, v) for k, _, v in Registry.entries(dup)} == {("topic", "a"), ("topic", "b")}
    await stop(a, SHUTDOWN)
    assert Registry.entries(unique) == [("b", b, 2)]
