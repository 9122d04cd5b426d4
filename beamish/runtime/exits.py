"""Exit reasons and the messages that links and monitors deliver.

An actor exits for one of five kinds of reason, as in OTP:

* ``normal`` — it stopped on purpose; links do not propagate it.
* ``shutdown`` — it was told to stop (by its supervisor, or ``stop(ref, SHUTDOWN)``);
  links propagate it, supervisors do not restart transient children for it.
* ``crash`` — a callback raised; ``exception`` holds the error.
* ``killed`` — it was killed outright (``exit(ref, KILL)``, ``brutal_kill``); not trappable.
* ``noproc`` — only in a DOWN for a monitor set on an actor that was already dead.

``DOWN`` (:class:`Down`) comes from a monitor, exactly once; ``EXIT`` (:class:`Exit`) comes
from a link when the receiver traps exits. Both arrive through ``handle_info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from beamish.runtime.process import ActorRef, MonitorRef

ExitKind = Literal["normal", "shutdown", "crash", "killed", "noproc", "kill"]


@dataclass(frozen=True, slots=True)
class ExitReason:
    """Why an actor exited. Compare with the module constants or test ``kind``."""

    kind: ExitKind
    detail: Any = None
    exception: BaseException | None = None

    @property
    def is_normal(self) -> bool:
        """True for ``normal`` only: the one reason links never propagate."""
        return self.kind == "normal"

    @property
    def is_shutdown(self) -> bool:
        """True for ``normal`` and ``shutdown``: exits a transient child is not restarted for."""
        return self.kind in ("normal", "shutdown")

    def __str__(self) -> str:
        if self.kind == "crash":
            return f"crash: {self.exception!r}"
        return self.kind if self.detail is None else f"{self.kind}: {self.detail!r}"


NORMAL = ExitReason("normal")
SHUTDOWN = ExitReason("shutdown")
KILLED = ExitReason("killed")
NOPROC = ExitReason("noproc")
#: The untrappable exit signal; the target exits with :data:`KILLED`.
KILL = ExitReason("kill")


def shutdown(detail: Any) -> ExitReason:
    """A ``shutdown`` reason carrying a detail, like OTP's ``{shutdown, Detail}``."""
    return ExitReason("shutdown", detail)


def crash(exc: BaseException) -> ExitReason:
    """The reason of an actor whose callback raised ``exc``."""
    return ExitReason("crash", exception=exc)


@dataclass(frozen=True, slots=True)
class Down:
    """A monitored actor exited (or was already dead when the monitor was set)."""

    ref: MonitorRef
    actor: ActorRef
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class Exit:
    """A linked actor exited, delivered as a message because the receiver traps exits."""

    actor: ActorRef
    reason: ExitReason
