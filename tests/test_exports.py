"""Every package's public API: each name in ``__all__`` resolves, and the lists are pinned."""

from __future__ import annotations

import importlib

import pytest

PINNED: dict[str, list[str]] = {
    "beamish": ["Runtime", "SessionCompletion", "SessionStream", "Settings", "lifespan"],
    "beamish.sessions": [
        "ConfigCache", "IdleQueue", "Janitor", "JanitorReport", "RuntimeNotRunningError",
        "SessionContext", "SessionError", "SessionInfo", "SessionLimitError",
        "SessionNotFoundError", "SessionOwnerError", "SessionSettings", "Sessions", "Services",
        "UsageRecorderActor", "Users"],
    "beamish.channels": [
        "Channel", "ChannelEnd", "ChannelsError", "CloseCode", "ConversationChannel",
        "ConversationHistory", "Frame", "FrameError", "JoinRefused", "PhoenixSocket",
        "RateLimit", "ReplyError", "ReplyRef", "SocketEndpoint", "SocketInfo", "SocketOptions",
        "channel_end", "decode_text", "encode_text"],
    "beamish.server": [
        "ApiAuth", "AuthError", "BeamishServer", "Principal", "ServerSettings", "TokenSigner",
        "api_router", "create_app", "install_api", "issue_token", "verify_token"],
}


@pytest.mark.parametrize("package", sorted(PINNED))
def test_all_is_pinned_and_resolves(package: str) -> None:
    """__all__ is the pinned list, each name once, and every name is reachable."""
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PINNED[package])
    assert len(set(module.__all__)) == len(module.__all__)
    assert [n for n in module.__all__ if getattr(module, n, None) is None] == []


def test_unknown_lazy_names_raise_attribute_error() -> None:
    """The lazily loading packages still refuse names they do not have."""
    for package in ("beamish", "beamish.server"):
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            _ = importlib.import_module(package).nope
