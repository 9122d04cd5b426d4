"""Every exception the runtime raises, in one place.

The tree::

    RuntimeError_ (BeamishRuntimeError)
    ├── NoProcessError          the target actor is dead, or no actor has that name
    ├── CallTimeoutError        no reply within the call's timeout (also a TimeoutError)
    ├── ActorExitedError        the callee exited before replying; carries its exit reason
    ├── MailboxFullError        a bounded mailbox refused a message (overflow="fail", or send())
    ├── AlreadyStartedError     a name is taken by a live actor
    ├── InvalidOptionError      a bad start option or child spec field (also a ValueError)
    ├── StartChildError         a supervisor could not start one of its children
    ├── TooManyChildrenError    a DynamicSupervisor is at max_children
    ├── NoNodeError             no beamish Node is running in this context
    └── CallError               a call that can never succeed (an actor calling itself)

Errors say what was wrong and what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beamish.runtime.exits import ExitReason


class BeamishRuntimeError(Exception):
    """Base class of every runtime error."""


class NoProcessError(BeamishRuntimeError):
    """The target actor is not alive (it exited, or no actor has that name)."""

    def __init__(self, target: Any, detail: str = "") -> None:
        self.target = target
        msg = f"no process: {target!r} is not alive"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class CallTimeoutError(BeamishRuntimeError, TimeoutError):
    """The callee did not reply within the timeout; a late reply is discarded."""

    def __init__(self, target: Any, request: Any, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        super().__init__(
            f"call to {target!r} timed out after {timeout:g}s (request {request!r:.80}); "
            "a late reply will be discarded"
        )


class ActorExitedError(BeamishRuntimeError):
    """The callee exited before it replied."""

    def __init__(self, target: Any, reason: ExitReason) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target!r} exited before replying: {reason}")


class MailboxFullError(BeamishRuntimeError):
    """A bounded mailbox is full and the message was refused."""

    def __init__(self, target: Any, capacity: int) -> None:
        self.target = target
        self.capacity = capacity
        super().__init__(
            f"mailbox of {target!r} is full ({capacity} messages); retry later, raise "
            "mailbox_size, or use overflow='block' to wait for room"
        )


class AlreadyStartedError(BeamishRuntimeError):
    """The name is already registered to a live actor."""

    def __init__(self, name: Any, existing: Any) -> None:
        self.name = name
        self.existing = existing
        super().__init__(f"name {name!r} is already taken by {existing!r}")


class InvalidOptionError(BeamishRuntimeError, ValueError):
    """A start option or child spec field is invalid; the message names the field."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid {field}: {value!r} (expected {expected})")


class StartChildError(BeamishRuntimeError):
    """A supervisor could not start a child; ``__cause__`` is the child's error."""

    def __init__(self, child_id: Any, error: BaseException) -> None:
        self.child_id = child_id
        self.error = error
        super().__init__(f"child {child_id!r} failed to start: {error!r}")


class TooManyChildrenError(BeamishRuntimeError):
    """A DynamicSupervisor already runs ``max_children`` children."""

    def __init__(self, supervisor: Any, max_children: int) -> None:
        self.max_children = max_children
        super().__init__(
            f"{supervisor!r} already has max_children={max_children} children; "
            "stop some or raise max_children"
        )


class NoNodeError(BeamishRuntimeError):
    """No Node is running in this context."""

    def __init__(self) -> None:
        super().__init__(
            "no beamish node is running here; start one with `async with Node() as node:`"
        )


class CallError(BeamishRuntimeError):
    """A call that can never succeed."""
