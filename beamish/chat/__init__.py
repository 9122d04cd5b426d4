"""The chat product: conversations with a user's LLM over Phoenix channels.

Built on the generic channels framework (:mod:`beamish.channels`) and the application
(:mod:`beamish.application`, the sessions and the LLM client):

* :mod:`.conversation` — :class:`ConversationChannel`, ``conversation:<id>``: chat through the
  user's session, token by token, usage recorded for every answer.
* :mod:`.history` — :class:`ConversationHistory`: each conversation's last messages, shared
  by the channels of a server through the socket assigns; the cache in front of the store.
* :mod:`.journal` — ``ConversationJournal``: messages written behind to the store, in group
  commits, by its ``ConversationWriter`` actor (a child of the application).
* :mod:`.errors` — the chat's errors, each with the reason a channel replies with.

``beamish serve`` mounts it at ``/socket/websocket`` (``beamish.server.serve``).
"""

from beamish.chat.conversation import ConversationChannel
from beamish.chat.history import ConversationHistory

__all__ = ["ConversationChannel", "ConversationHistory"]
