"""Names: how a target other than an ActorRef is found.

A name is either a ``str`` — registered node-wide, like an Erlang local name — or a *via*
name (:func:`beamish.runtime.registry.via`) that a registry resolves. Names are released
automatically when their actor exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from beamish.runtime.errors import NoProcessError
from beamish.runtime.process import current_node

if TYPE_CHECKING:
    from beamish.runtime.process import ActorRef


@runtime_checkable
class ViaName(Protocol):
    """A name resolved by something other than the node (e.g. a Registry)."""

    def whereis(self) -> ActorRef | None:
        """The live actor registered under this name, or None."""

    def register(self, proc: ActorRef) -> None:
        """Register ``proc`` under this name; raise AlreadyStartedError if taken."""


Name = str | ViaName


def resolve_or_none(target: object) -> ActorRef | None:
    """The live actor a name or ref stands for, or None."""
    from beamish.runtime.process import ActorRef

    if isinstance(target, ActorRef):
        return target if target.alive else None
    if isinstance(target, str):
        return current_node().whereis(target)
    if isinstance(target, ViaName):
        return target.whereis()
    raise TypeError(f"not an actor ref or name: {target!r}")


def resolve(target: object) -> ActorRef:
    """Like :func:`resolve_or_none`, but raise :class:`NoProcessError` when nothing is there."""
    proc = resolve_or_none(target)
    if proc is None:
        raise NoProcessError(target, "no live actor has that name")
    return proc
