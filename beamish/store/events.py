"""Config change events: what a store write that can change a resolution tells its listeners.

::

    from beamish.store import ConfigChange, SharedConfigChanged, UserConfigChanged

    def changed(change: ConfigChange) -> None:
        match change:
            case UserConfigChanged(user_id):
                drop_user(user_id)
            case SharedConfigChanged(what):     # "providers", "catalog" or "global_configs"
                drop_everything()
            case TemplateChanged(name):
                drop_template(name)

    unsubscribe = store.subscribe(changed)

Every store write that can change what a user resolves to publishes one event: a user's
profile (and so their tier), configs or task overrides → ``UserConfigChanged(user_id)``; the
provider registry, a provider's model catalog, the global and tier configs →
``SharedConfigChanged(what)``; a prompt template's new version or moved or deleted label →
``TemplateChanged(name)`` (no resolution depends on it: resolvers ignore it, template
caches follow it). Reads and usage writes publish nothing.

When. A listener runs synchronously in the writer's task once the write's transaction has
ended, before the write returns, so a read after the write never sees what the change
dropped. The event is published whether the write committed or failed — a failure can come
after the commit (a cancellation or a lost connection while committing), and dropping a cache
entry for nothing costs one reload where keeping a stale one is wrong until its TTL.

Listeners should only note the change (clear a dict, ``cast`` to an actor): they must not
block, and what they raise is logged and dropped, so one listener can neither fail the write
nor keep the others from hearing of it. The events are plain values, with nothing of the
process that made them, so a notifier may carry them between nodes unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

SharedConfig = Literal["providers", "catalog", "global_configs"]
"""Which shared part of the configuration changed."""


@dataclass(frozen=True, slots=True)
class UserConfigChanged:
    """A user's profile (tier, preferences), configs or task overrides changed."""

    user_id: str


@dataclass(frozen=True, slots=True)
class SharedConfigChanged:
    """The provider registry, a model catalog, or the global and tier configs changed."""

    what: SharedConfig


@dataclass(frozen=True, slots=True)
class TemplateChanged:
    """A prompt template's versions or labels changed (``beamish.templates`` caches follow)."""

    name: str


ConfigChange = UserConfigChanged | SharedConfigChanged | TemplateChanged
"""Any config change event."""

ConfigListener = Callable[[ConfigChange], object]
"""Called with each change (see the module docs for when, and what it must not do)."""


class ConfigEvents:
    """The listeners of one store, and the fan-out of its changes to them (sans-I/O)."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        # Keyed by a token per subscription: the same function may subscribe twice, and
        # each unsubscribe removes its own subscription once, whatever the order.
        self._listeners: dict[object, ConfigListener] = {}

    def __len__(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: ConfigListener) -> Callable[[], None]:
        """Call ``listener`` with every change from now on; returns the unsubscribe function.

        Unsubscribing twice is harmless.
        """
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def publish(self, change: ConfigChange) -> None:
        """Tell every listener of ``change``, in subscription order; log what they raise."""
        for listener in tuple(self._listeners.values()):
            try:
                listener(change)
            except Exception:  # a listener must not fail the write, nor stop the others
                log.exception("config change listener %r failed on %r", listener, change)
