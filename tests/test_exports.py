"""Every package's public API: each name in ``__all__`` resolves, and the lists are pinned."""

from __future__ import annotations

import importlib

import pytest

import beamish.auth
import beamish.chat
import beamish.runtime
import beamish.server
import beamish.settings

PINNED: dict[str, list[str]] = {
    "beamish": ["Application", "SessionCompletion", "SessionEmbeddings", "SessionStream",
                "Settings", "lifespan"],
    "beamish.sessions": [
        "ConfigCache", "IdleQueue", "Janitor", "JanitorReport", "RuntimeNotRunningError",
        "SessionAmbiguousError", "SessionCensus", "SessionContext", "SessionError",
        "SessionHold", "SessionInfo", "SessionKey", "SessionLimitError",
        "SessionNotFoundError", "SessionOwnerError", "SessionSettings", "Sessions", "Services",
        "UsageRecorderActor", "Users"],
    "beamish.auth": [
        "ADMIN_SCOPE", "SECRET_KEY_ENV", "USER_SCOPE", "AuthError", "Authenticator",
        "BadTokenSignatureError", "BeamishAuthError", "DevModeAuthenticator", "DevModeError",
        "MalformedTokenError", "MissingTokenError", "Principal", "SigningKeyError",
        "TokenAuthenticator", "TokenExpiredError", "TokenSigner", "dev_mode_allowed",
        "dev_mode_warning", "issue_token", "verify_token", "RevocationList",
        "TokenRevokedError"],
    "beamish.channels": [
        "Channel", "ChannelEnd", "ChannelsError", "CloseCode", "Frame", "FrameError",
        "InvalidOptionError", "JoinRefused", "PhoenixSocket", "RateLimit", "ReplyError",
        "ReplyRef", "SocketEndpoint", "SocketInfo", "SocketOptions", "channel_end",
        "decode_text", "encode_text"],
    "beamish.chat": ["ConversationChannel", "ConversationHistory", "JobFeed", "UserChannel"],
    "beamish.templates": [
        "MAX_OUTPUT_CHARS", "MAX_VARIABLES_BYTES", "RENDER_TIMEOUT_S", "RenderProblem",
        "RenderedPrompt", "TemplateError", "TemplateNotFoundError", "TemplateRenderError",
        "TemplateSchemaError", "TemplateSyntaxError", "TemplateVariablesError", "Templates",
        "compile_source"],
    "beamish.server": [
        "ApiAuth", "AuthError", "BeamishServer", "Principal", "ServerSettings", "TokenSigner",
        "api_router", "create_app", "install_api", "issue_token", "mount_beamish",
        "verify_token"],
    "beamish.jobs": [
        "AttemptError", "FormatError", "InvalidJobError", "JobError", "JobEvent", "JobHandle",
        "JobLimitError",
        "JobNotFoundError", "JobRequest", "JobSubmission", "Jobs", "JobsContext",
        "JobsNotRunningError",
        "JobsSettings", "MissingPromptError", "OutputForbiddenError", "OutputNotCompletedError",
        "PermanentAttemptError", "QueueSettings",
        "RenderedPrompt", "Renderer", "RetryableAttemptError", "WaitLimitError", "jobs_spec"],
    "beamish.web": ["LINK_LIFETIME_S", "LinkCode", "SignInLinks", "install_web", "router"],
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


@pytest.mark.parametrize("name", ["ConversationChannel", "ConversationHistory"])
def test_the_old_channels_names_warn_and_point_to_the_chat_package(name: str) -> None:
    """beamish.channels.ConversationChannel/History still resolve, with a DeprecationWarning
    naming beamish.chat, for one release."""
    channels = importlib.import_module("beamish.channels")
    with pytest.warns(DeprecationWarning, match=rf"moved to beamish\.chat\.{name}"):
        moved = getattr(channels, name)
    assert moved is getattr(beamish.chat, name)


def test_unknown_channels_names_raise_attribute_error_without_a_warning() -> None:
    """The deprecation hook of beamish.channels refuses names that never were there."""
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = importlib.import_module("beamish.channels").nope


def test_the_server_still_lends_the_names_that_moved_below_it() -> None:
    """beamish.server's lazy Principal, TokenSigner, issue/verify_token, AuthError and
    ServerSettings are the objects of their new homes."""
    assert beamish.server.Principal is beamish.auth.Principal
    assert beamish.server.TokenSigner is beamish.auth.TokenSigner
    assert beamish.server.issue_token is beamish.auth.issue_token
    assert beamish.server.verify_token is beamish.auth.verify_token
    assert beamish.server.AuthError is beamish.auth.AuthError
    assert beamish.server.ServerSettings is beamish.settings.ServerSettings


def test_there_is_one_invalid_option_error() -> None:
    """The channels raise the runtime's InvalidOptionError: the same class object."""
    channels = importlib.import_module("beamish.channels")
    errors = importlib.import_module("beamish.channels.errors")
    assert channels.InvalidOptionError is beamish.runtime.InvalidOptionError
    assert errors.InvalidOptionError is beamish.runtime.InvalidOptionError


def test_runtime_is_the_old_name_of_application() -> None:
    """beamish.Runtime still resolves to Application, with a DeprecationWarning, for one
    release."""
    with pytest.warns(DeprecationWarning, match=r"beamish\.Runtime is now beamish\.Application"):
        old = beamish.Runtime
    assert old is beamish.Application
