"""Registry: find actors by key — unique keys (one actor per key) or duplicate keys (pub/sub).

::

    reg = await start(Registry, "unique", name="sessions")
    ref = await start(Session, sid, name=via("sessions", sid))   # registered as it starts
    await call(via("sessions", sid), "get")

    users = await start(Registry, "duplicate", name="by_user")
    Registry.register("by_user", user_id)                          # from inside an actor
    Registry.dispatch("by_user", user_id, lambda entries: ...)     # (ref, value) pairs

As Elixir's Registry is backed by ETS, lookups and dispatch read the table directly, without a
message round trip; the table belongs to the Registry actor and dies with it. An entry goes
away by itself when the actor that registered it exits.

Option: the ``init`` argument is ``"unique"`` [default] or ``"duplicate"``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Literal

from beamish.runtime.actor import Actor
from beamish.runtime.errors import AlreadyStartedError, CallError, InvalidOptionError
from beamish.runtime.exits import ExitReason
from beamish.runtime.names import Name, resolve
from beamish.runtime.process import ActorRef, current_process

Keys = Literal["unique", "duplicate"]
Entry = tuple[ActorRef, Any]


class Registry(Actor):
    """A key → actor table owned by this actor. Use the static methods to read and write it."""

    async def init(self, arg: Keys | None) -> None:
        kind = arg or "unique"
        if kind not in ("unique", "duplicate"):
            raise InvalidOptionError("keys", arg, "'unique' or 'duplicate'")
        self.kind: Keys = kind
        self.unique: dict[Hashable, Entry] = {}
        self.duplicate: dict[Hashable, dict[ActorRef, Any]] = {}

    async def terminate(self, reason: ExitReason) -> None:
        self.unique.clear()
        self.duplicate.clear()

    # -- table operations (synchronous: single-threaded, no await in between) -------------

    def _put(self, key: Hashable, proc: ActorRef, value: Any) -> None:
        if not proc.alive:
            raise CallError(f"{proc!r} is not alive and cannot be registered")
        if self.kind == "unique":
            existing = self.unique.get(key)
            if existing is not None and existing[0].alive:
                raise AlreadyStartedError(key, existing[0])
            self.unique[key] = (proc, value)
        else:
            self.duplicate.setdefault(key, {})[proc] = value
        if proc._names is None:
            proc._names = []
        proc._names.append(lambda p: self._drop(key, p))

    def _drop(self, key: Hashable, proc: ActorRef) -> None:
        if self.kind == "unique":
            entry = self.unique.get(key)
            if entry is not None and entry[0] is proc:
                del self.unique[key]
            return
        entries = self.duplicate.get(key)
        if entries is not None:
            entries.pop(proc, None)
            if not entries:
                del self.duplicate[key]

    def _entries(self, key: Hashable) -> list[Entry]:
        if self.kind == "unique":
            entry = self.unique.get(key)
            return [entry] if entry is not None and entry[0].alive else []
        return [(p, v) for p, v in self.duplicate.get(key, {}).items() if p.alive]

    # -- public API -----------------------------------------------------------------------

    @staticmethod
    def register(registry: ActorRef | Name, key: Hashable, value: Any = None,
                 proc: ActorRef | None = None) -> None:
        """Register ``proc`` (default: the calling actor) under ``key`` with ``value``."""
        owner = proc or current_process.get()
        if owner is None:
            raise CallError("Registry.register needs an actor; pass proc= or call from one")
        _table(registry)._put(key, owner, value)

    @staticmethod
    def unregister(registry: ActorRef | Name, key: Hashable,
                   proc: ActorRef | None = None) -> None:
        """Remove the calling actor's (or ``proc``'s) entry under ``key``."""
        owner = proc or current_process.get()
        if owner is not None:
            _table(registry)._drop(key, owner)

    @staticmethod
    def lookup(registry: ActorRef | Name, key: Hashable) -> list[Entry]:
        """(ref, value) of every live actor registered under ``key``."""
        return _table(registry)._entries(key)

    @staticmethod
    def whereis(registry: ActorRef | Name, key: Hashable) -> ActorRef | None:
        """The actor under a unique ``key``, or None."""
        entries = _table(registry)._entries(key)
        return entries[0][0] if entries else None

    @staticmethod
    def dispatch(registry: ActorRef | Name, key: Hashable,
                 fn: Callable[[list[Entry]], Any]) -> bool:
        """Call ``fn`` with the entries under ``key``; False (fn not called) if there are none."""
        entries = _table(registry)._entries(key)
        if not entries:
            return False
        fn(entries)
        return True

    @staticmethod
    def keys(registry: ActorRef | Name, proc: ActorRef) -> list[Hashable]:
        """Every key ``proc`` is registered under."""
        table = _table(registry)
        if table.kind == "unique":
            return [k for k, (p, _) in table.unique.items() if p is proc]
        return [k for k, entries in table.duplicate.items() if proc in entries]

    @staticmethod
    def entries(registry: ActorRef | Name) -> list[tuple[Hashable, ActorRef, Any]]:
        """(key, ref, value) of every live entry, e.g. to message every registered actor."""
        table = _table(registry)
        if table.kind == "unique":
            return [(k, p, v) for k, (p, v) in table.unique.items() if p.alive]
        return [(k, p, v) for k, found in table.duplicate.items()
                for p, v in found.items() if p.alive]

    @staticmethod
    def count(registry: ActorRef | Name) -> int:
        """How many entries the registry holds."""
        table = _table(registry)
        if table.kind == "unique":
            return len(table.unique)
        return sum(len(entries) for entries in table.duplicate.values())


def _table(registry: ActorRef | Name) -> Registry:
    proc = registry if isinstance(registry, ActorRef) else resolve(registry)
    actor = proc._actor
    if not proc.alive or not isinstance(actor, Registry) or not hasattr(actor, "kind"):
        raise CallError(f"{registry!r} is not a running Registry")
    return actor


class Via:
    """A name resolved through a registry; pass it as ``name=`` or as a call target."""

    __slots__ = ("key", "registry")

    def __init__(self, registry: ActorRef | Name, key: Hashable) -> None:
        self.registry = registry
        self.key = key

    def whereis(self) -> ActorRef | None:
        return Registry.whereis(self.registry, self.key)

    def register(self, proc: ActorRef) -> None:
        table = _table(self.registry)
        if table.kind != "unique":
            raise InvalidOptionError("name", self, "a via name on a unique-keys registry")
        table._put(self.key, proc, None)

    def __repr__(self) -> str:
        return f"via({self.registry!r}, {self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Via) and (other.registry, other.key) == (self.registry, self.key)

    def __hash__(self) -> int:
        return hash((Via, self.key))


def via(registry: ActorRef | Name, key: Hashable) -> Via:
    """The name of the actor registered under ``key`` in ``registry``."""
    return Via(registry, key)
