"""ChatMessage: checked when made, validated from a mapping; small and immutable."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from beamish.llm.providers import ChatMessage, ChatRequest, Prompt, parse_chat_message


def test_a_message_is_checked_when_made() -> None:
    """An unknown role or a non-string content fails at once, naming the field."""
    with pytest.raises(ValueError, match="role is one of assistant, system, user, not 'robot'"):
        ChatMessage(role="robot", content="hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="content is a string, not NoneType"):
        ChatMessage(role="user", content=None)  # type: ignore[arg-type]


def test_parse_chat_message_takes_a_mapping_and_refuses_extra_fields() -> None:
    """A dict becomes the same message; a field the message has not is an error."""
    assert parse_chat_message({"role": "user", "content": "hi"}) == ChatMessage(
        role="user", content="hi")
    with pytest.raises(ValidationError, match="name"):
        parse_chat_message({"role": "user", "content": "hi", "name": "ada"})
    with pytest.raises(ValidationError):
        parse_chat_message("hi")


def test_a_message_is_frozen_and_small() -> None:
    """No assignment after it is made; no instance dict: a history holds many of them."""
    message = ChatMessage(role="assistant", content="ok")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.content = "changed"  # type: ignore[misc]
    assert not hasattr(message, "__dict__")
    assert sys.getsizeof(message) <= 64


def test_a_request_keeps_the_messages_it_was_given() -> None:
    """Validating a request accepts made messages as they are, without copying each."""
    messages = (ChatMessage(role="user", content="a"), ChatMessage(role="assistant", content="b"))
    request = ChatRequest(model="m", messages=messages, timeout_s=1.0)
    assert request.messages is messages
    listed = ChatRequest(model="m", messages=list(messages), timeout_s=1.0)  # type: ignore[arg-type]
    assert type(listed.messages) is tuple
    assert listed.messages == messages


@pytest.mark.parametrize(("fields", "error", "match"), [
    ({"model": ""}, ValueError, "names a model"),
    ({"messages": ()}, ValueError, "at least one message"),
    ({"messages": ({"role": "user", "content": "a"},)}, TypeError, "not dict"),
    ({"timeout_s": 0}, ValueError, "above 0"),
    ({"timeout_s": "1"}, ValueError, "above 0"),
    ({"parameters": {"temperature": 1.0}}, TypeError, "LLMParameters, not dict"),
])
def test_a_request_is_checked_when_made(fields: dict[str, Any], error: type[Exception],
                                        match: str) -> None:
    """A bad request fails where it is made, saying which part is wrong."""
    good: dict[str, Any] = {"model": "m", "messages": (ChatMessage(role="user", content="a"),),
                            "timeout_s": 1.0}
    with pytest.raises(error, match=match):
        ChatRequest(**{**good, **fields})


def test_a_prompt_checks_its_messages_unless_trusted() -> None:
    """Prompt() refuses anything but messages; trusted() is for code that made each one."""
    message = ChatMessage(role="user", content="a")
    assert Prompt([message]) == (message,)
    with pytest.raises(TypeError, match="ChatMessage objects, not dict"):
        Prompt([message, {"role": "user", "content": "b"}])  # type: ignore[list-item]
    trusted = Prompt.trusted([message])
    assert type(trusted) is Prompt
    assert trusted == (message,)
    request = ChatRequest(model="m", messages=trusted, timeout_s=1.0)
    assert request.messages == (message,)
