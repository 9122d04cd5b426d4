"""The chat product: conversations with a user's LLM over Phoenix channels.

Built on the generic channels framework (:mod:`beamish.channels`) and the application
(:mod:`beamish.application`, the sessions and the LLM client):

* :mod:`.conversation` — :class:`ConversationChannel`, ``conversation:<id>``: chat through the
  user's session, token by token, usage recorded for every answer.
* :mod:`.user` — :class:`UserChannel`, ``user:<id>``: the user's job progress, live, and
  ``enqueue``; :mod:`.job_feed` — :class:`JobFeed`, the server's one job listener that
  fans events out to those channels.
* :mod:`.history` — :class:`ConversationHistory`: each conversation's last messages, shared
  by the channels of a server through the socket assigns; the cache in front of the store.
* :mod:`.journal` — ``ConversationJournal``: messages written behind to the store, in group
  commits, by its ``ConversationWriter`` actor (a child of the application).
* :mod:`.errors` — the chat's errors, each with the reason a channel replies with.

``beamish serve`` mounts it at ``/socket/websocket`` (``beamish.server.serve``).
"""

from beamish.chat.conversation import ConversationChannel
from beamish.chat.history import ConversationHistory
from beamish.chat.job_feed import JobFeed
from beamish.chat.user import UserChannel

__all__ = ["ConversationChannel", "ConversationHistory", "JobFeed", "UserChannel"]
