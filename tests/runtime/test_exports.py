"""The public API of beamish.runtime: every name exists, is exported once, and is pinned."""

from __future__ import annotations

import ast
import inspect
import types

import beamish.runtime as runtime

PINNED = [
    "Actor",
    "ActorExitedError",
    "ActorInfo",
    "ActorRef",
    "AlreadyStartedError",
    "BeamishRuntimeError",
    "CallError",
    "CallTimeoutError",
    "Caller",
    "ChildSpec",
    "Down",
    "DynamicSupervisor",
    "Exit",
    "ExitCallback",
    "ExitReason",
    "ExponentialBackoff",
    "Inbox",
    "InvalidOptionError",
    "Jitter",
    "KILL",
    "KILLED",
    "MailboxFullError",
    "MonitorRef",
    "NOPROC",
    "NOREPLY",
    "NORMAL",
    "NoNodeError",
    "NoProcessError",
    "Node",
    "ROOT",
    "Registry",
    "SHUTDOWN",
    "StartChildError",
    "Supervisor",
    "Timer",
    "TooManyChildrenError",
    "TreeNode",
    "call",
    "cast",
    "child_spec",
    "demonitor",
    "dynamic_supervisor_spec",
    "exit",
    "idle_actor",
    "link",
    "monitor",
    "on_exit",
    "open_inbox",
    "reply",
    "restart_child",
    "self_ref",
    "send",
    "send_after",
    "send_interval",
    "start",
    "start_child",
    "start_dynamic_supervisor",
    "start_supervisor",
    "stop",
    "supervisor_spec",
    "terminate_child",
    "terminate_child_ref",
    "terminate_children",
    "try_cast",
    "unlink",
    "via",
    "which_children",
]


def _reexports() -> list[str]:
    """Names bound by ``from ... import X as X`` statements in the package's __init__."""
    tree = ast.parse(inspect.getsource(runtime))
    return [
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


def test_all_is_pinned() -> None:
    """__all__ is exactly the pinned, sorted list: API changes are deliberate."""
    assert runtime.__all__ == PINNED
    assert sorted(PINNED) == PINNED


def test_every_name_in_all_exists() -> None:
    """Every name in __all__ is an attribute of the package."""
    missing = [name for name in runtime.__all__ if not hasattr(runtime, name)]
    assert missing == []


def test_every_name_is_exported_once() -> None:
    """No name is listed twice in __all__ or imported twice in __init__."""
    assert len(set(runtime.__all__)) == len(runtime.__all__)
    imported = _reexports()
    assert sorted(imported) == sorted(set(imported))
    assert sorted(imported) == PINNED


def test_reexports_use_explicit_as_form() -> None:
    """Each re-export is written ``import X as X`` so type checkers treat it as public."""
    tree = ast.parse(inspect.getsource(runtime))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            assert node.module is not None
            assert node.module.startswith("beamish.runtime.")
            for alias in node.names:
                assert alias.asname == alias.name


def test_no_public_name_missing_from_all() -> None:
    """Every public non-module attribute of the package is listed in __all__."""
    public = {
        name
        for name, value in vars(runtime).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(runtime.__all__)


def test_exported_objects_come_from_their_modules() -> None:
    """Each exported object is the one defined in the runtime's own modules."""
    for name in runtime.__all__:
        value = getattr(runtime, name)
        module = getattr(value, "__module__", None)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert module is not None
            assert module.startswith("beamish.runtime."), name
