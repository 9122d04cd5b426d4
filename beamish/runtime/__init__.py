"""beamish.runtime: OTP-style actors, supervisors, a registry, links, monitors and timers.

Modules, one concept each:

* :mod:`.actor` — :class:`Actor` (GenServer callbacks) and the client API
  (:func:`start`, :func:`call`, :func:`cast`, :func:`try_cast`, :func:`send`, :func:`stop`,
  :func:`reply`; :func:`idle_actor` for an actor's own transport).
* :mod:`.process` — :class:`ActorRef`: mailbox, links, monitors, death.
* :mod:`.links` — :func:`link`, :func:`unlink`, :func:`monitor`, :func:`demonitor`,
  :func:`on_exit`, :func:`exit`.
* :mod:`.exits` — exit reasons and the :class:`Down` / :class:`Exit` messages.
* :mod:`.restarts` — sans-I/O supervisor decisions; :mod:`.supervisor` carries them out;
  :mod:`.dynamic` — :class:`DynamicSupervisor`.
* :mod:`.registry` — :class:`Registry` (unique and duplicate keys, via-names, dispatch).
* :mod:`.timers` — :func:`send_after`, :func:`send_interval`.
* :mod:`.backoff` — :class:`ExponentialBackoff`: sans-I/O retry waits (capped, jittered).
* :mod:`.node` — :class:`Node`: the process table, names, the root tree (:data:`ROOT`),
  introspection.
* :mod:`.inbox` — :func:`open_inbox`: a process identity for code that is not an actor.
* :mod:`.errors` — every exception, with the tree.
"""

from beamish.runtime.actor import NOREPLY as NOREPLY
from beamish.runtime.actor import Actor as Actor
from beamish.runtime.actor import call as call
from beamish.runtime.actor import cast as cast
from beamish.runtime.actor import idle_actor as idle_actor
from beamish.runtime.actor import reply as reply
from beamish.runtime.actor import send as send
from beamish.runtime.actor import start as start
from beamish.runtime.actor import stop as stop
from beamish.runtime.actor import try_cast as try_cast
from beamish.runtime.backoff import ExponentialBackoff as ExponentialBackoff
from beamish.runtime.backoff import Jitter as Jitter
from beamish.runtime.dynamic import DynamicSupervisor as DynamicSupervisor
from beamish.runtime.dynamic import dynamic_supervisor_spec as dynamic_supervisor_spec
from beamish.runtime.dynamic import start_child as start_child
from beamish.runtime.dynamic import start_dynamic_supervisor as start_dynamic_supervisor
from beamish.runtime.dynamic import terminate_child_ref as terminate_child_ref
from beamish.runtime.dynamic import terminate_children as terminate_children
from beamish.runtime.errors import ActorExitedError as ActorExitedError
from beamish.runtime.errors import AlreadyStartedError as AlreadyStartedError
from beamish.runtime.errors import BeamishRuntimeError as BeamishRuntimeError
from beamish.runtime.errors import CallError as CallError
from beamish.runtime.errors import CallTimeoutError as CallTimeoutError
from beamish.runtime.errors import InvalidOptionError as InvalidOptionError
from beamish.runtime.errors import MailboxFullError as MailboxFullError
from beamish.runtime.errors import NoNodeError as NoNodeError
from beamish.runtime.errors import NoProcessError as NoProcessError
from beamish.runtime.errors import StartChildError as StartChildError
from beamish.runtime.errors import TooManyChildrenError as TooManyChildrenError
from beamish.runtime.exits import KILL as KILL
from beamish.runtime.exits import KILLED as KILLED
from beamish.runtime.exits import NOPROC as NOPROC
from beamish.runtime.exits import NORMAL as NORMAL
from beamish.runtime.exits import SHUTDOWN as SHUTDOWN
from beamish.runtime.exits import Down as Down
from beamish.runtime.exits import Exit as Exit
from beamish.runtime.exits import ExitReason as ExitReason
from beamish.runtime.inbox import Inbox as Inbox
from beamish.runtime.inbox import open_inbox as open_inbox
from beamish.runtime.links import demonitor as demonitor
from beamish.runtime.links import exit as exit
from beamish.runtime.links import link as link
from beamish.runtime.links import monitor as monitor
from beamish.runtime.links import on_exit as on_exit
from beamish.runtime.links import self_ref as self_ref
from beamish.runtime.links import unlink as unlink
from beamish.runtime.node import ROOT as ROOT
from beamish.runtime.node import ActorInfo as ActorInfo
from beamish.runtime.node import Node as Node
from beamish.runtime.node import TreeNode as TreeNode
from beamish.runtime.process import ActorRef as ActorRef
from beamish.runtime.process import Caller as Caller
from beamish.runtime.process import ExitCallback as ExitCallback
from beamish.runtime.process import MonitorRef as MonitorRef
from beamish.runtime.registry import Registry as Registry
from beamish.runtime.registry import via as via
from beamish.runtime.supervisor import ChildSpec as ChildSpec
from beamish.runtime.supervisor import Supervisor as Supervisor
from beamish.runtime.supervisor import child_spec as child_spec
from beamish.runtime.supervisor import restart_child as restart_child
from beamish.runtime.supervisor import start_supervisor as start_supervisor
from beamish.runtime.supervisor import supervisor_spec as supervisor_spec
from beamish.runtime.supervisor import terminate_child as terminate_child
from beamish.runtime.supervisor import which_children as which_children
from beamish.runtime.timers import Timer as Timer
from beamish.runtime.timers import send_after as send_after
from beamish.runtime.timers import send_interval as send_interval

__all__ = [
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
