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


def test_a_conversation_drops_its_oldest_messages_beyond_its_bytes() -> None:
    """max_conversation_bytes bounds one conversation; the newest message is always kept."""
    history = ConversationHistory(max_conversation_bytes=10_000)
    conversation = history.open("c1", "u1")
    assert conversation is not None
    for i in range(10):
        conversation.add("user", "x" * 3000, f"r{i}")
    assert conversation.size <= 10_000 + 200
    assert [m.request_id for m in conversation.since(0)] == ["r7", "r8", "r9"]
    conversation.add("user", "y" * 50_000, "big")
    assert [m.request_id for m in conversation.since(0)] == ["big"]
    assert history.size == conversation.size


def test_the_history_forgets_least_recent_conversations_beyond_its_bytes() -> None:
    """max_bytes bounds every conversation together, by content bytes, oldest forgotten."""
    history = ConversationHistory(max_bytes=100_000, max_conversation_bytes=60_000)
    for n in range(10):
        conversation = history.open(f"c{n}", f"u{n}")
        assert conversation is not None
        conversation.add("user", "é" * 20_000, "r")  # 40,000 UTF-8 bytes
    assert len(history) == 2
    assert history.size <= 100_000
    assert history.size == sum(c.size for c in history._conversations.values())
    assert history.open("c0", "u0") is not None  # forgotten: started afresh
    assert history.open("c0", "u0").last_id == 0
    assert history.users() == len(history)


def test_one_user_cannot_crowd_out_the_others() -> None:
    """Beyond max_conversations_per_user a user's own least recent conversation goes."""
    history = ConversationHistory(max_conversations_per_user=3)
    history.open("theirs", "u2").add("user", "hello", "r1")
    for n in range(200):
        history.open(f"mine{n}", "u1")
    assert len(history) == 4
    assert history.open("theirs", "u2").last_id == 1  # still kept, with u2's message
    assert [key for key in history._conversations if key[0] == "u1"] == [
        ("u1", "mine197"), ("u1", "mine198"), ("u1", "mine199")]


def test_empty_messages_and_oversized_ids_weigh_too() -> None:
    """Each message counts an overhead beside its text, so a flood of tiny ones is bounded."""
    history = ConversationHistory(max_bytes=50_000, max_messages=10**6,
                                  max_conversation_bytes=10_000)
    conversation = history.open("c1", "u1")
    assert conversation is not None
    for i in range(100_000):
        conversation.add("user", "", str(i))
    assert conversation.size <= 10_000 + 500
    assert len(conversation.since(0)) < 100


def test_a_users_conversations_are_listed_newest_first_and_found_without_creating() -> None:
    """of_user lists one user's kept conversations, most recently used first; find never
    creates one, nor finds another user's."""
    history = ConversationHistory()
    history.open("a", "ada").add("user", "first", "r1")
    history.open("b", "ada")
    history.open("a", "bob")
    history.open("a", "ada")  # used again: now the newest
    assert [cid for cid, _ in history.of_user("ada")] == ["a", "b"]
    assert [cid for cid, _ in history.of_user("bob")] == ["a"]
    assert history.of_user("eve") == []
    found = history.find("a", "ada")
    assert found is not None
    assert [m.content for m in found.since(0)] == ["first"]
    assert history.find("a", "eve") is None
    assert history.find("zzz", "ada") is None
    assert len(history) == 3
