"""ConversationHistory: bounded per conversation, owned by one user, the prompt as sent."""

from __future__ import annotations

import pytest

from beamish.chat.history import ConversationHistory, HistoryEntry
from beamish.llm.providers import ChatMessage, Prompt
from beamish.llm.providers.echo import _WordCounts, count_tokens


def test_the_prompt_is_the_kept_messages_in_order() -> None:
    """At most max_messages are kept; the prompt holds them oldest first, as messages."""
    history = ConversationHistory(max_messages=3)
    conversation = history.open("c1", "u1")
    assert conversation is not None
    for i in range(5):
        conversation.add("user" if i % 2 == 0 else "assistant", f"m{i}", f"r{i}")
    prompt = conversation.prompt()
    assert type(prompt) is Prompt
    assert prompt == (ChatMessage(role="user", content="m2"),
                      ChatMessage(role="assistant", content="m3"),
                      ChatMessage(role="user", content="m4"))
    assert [m.id for m in conversation.since(0)] == [3, 4, 5]
    assert conversation.last_id == 5


def test_the_echo_provider_counts_the_prompt_as_it_is_now() -> None:
    """As messages come and go (trimmed ones leave), the echo provider's count of the prompt,
    remembered from earlier prompts, is a recount's."""
    history = ConversationHistory(max_messages=4)
    conversation = history.open("c1", "u1")
    assert conversation is not None
    counts = _WordCounts()
    assert counts.total(conversation.prompt()) == 0
    for i in range(11):
        conversation.add("user", " ".join(["w"] * i) + "\n x ", f"r{i}")
        prompt = conversation.prompt()
        assert counts.total(prompt) == sum(count_tokens(m.content) for m in prompt) > 0
    assert len(prompt) == 4


def test_conversation_ids_are_per_user() -> None:
    """Two users' c1 are two conversations; neither sees or extends the other's."""
    history = ConversationHistory()
    mine = history.open("c1", "u1")
    mine.add("user", "secret", "r1")
    theirs = history.open("c1", "u2")
    assert (theirs.owner, theirs.last_id) == ("u2", 0)
    assert history.open("c1", "u1") is mine
    assert len(history) == 2


def test_an_evicted_conversation_id_is_never_taken_over() -> None:
    """With the limit reached, another user opening the same id still gets their own
    conversation, not the evicted owner's id and messages."""
    history = ConversationHistory(max_conversations=1)
    history.open("default", "u1").add("user", "secret", "r1")
    taken = history.open("default", "u2")
    assert (taken.owner, taken.since(0)) == ("u2", [])
    assert history.open("default", "u1").owner == "u1"


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConversationHistory(max_messages=0)


def test_since_hands_out_the_messages_after_an_id() -> None:
    """Ids count every message added; since() skips the ones seen and those trimmed away."""
    history = ConversationHistory(max_messages=3)
    conversation = history.open("c1", "u1")
    assert conversation is not None
    assert conversation.since(0) == []
    ids = [conversation.add("user", f"m{i}", f"r{i}") for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert conversation.since(3) == [HistoryEntry(4, "user", "m3", "r3"),
                                     HistoryEntry(5, "user", "m4", "r4")]
    assert [m.id for m in conversation.since(1)] == [3, 4, 5]  # 2 was trimmed
    assert conversation.since(5) == []
    assert conversation.since(9) == []
    assert conversation.since(4)[0].to_json() == {"id": 5, "role": "user", "content": "m4",
                                                  "request_id": "r4"}
