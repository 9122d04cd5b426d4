"""Application.embed: vectors in a session or for a user, usage in the ledger exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamish.application import Application
from beamish.llm.errors import FallbacksExhaustedError
from beamish.llm.providers.echo import echo_embedding
from beamish.sessions.errors import SessionNotFoundError
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings
from beamish.store import TaskTypeUsage

pytestmark = pytest.mark.anyio


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{path / 'beamish.db'}",
                    sessions=SessionSettings(sweep_interval_s=3600.0))


def _embeddings_row(rows: list[TaskTypeUsage]) -> TaskTypeUsage:
    (row,) = [r for r in rows if r.task_type == "embeddings"]
    return row


async def test_embed_for_a_user_records_prompt_tokens_once(tmp_path: Path) -> None:
    """Outside a session, embed resolves the user's config and records its usage once."""
    async with Application(_settings(tmp_path)) as rt:
        result = await rt.embed(None, ["one two", "three"], user_id="ada")
        assert result.embeddings.vectors == (echo_embedding("one two"), echo_embedding("three"))
        assert result.config.task_type == "embeddings"
        again = await rt.embed(None, "one two three", user_id="ada",
                               request_id=result.request_id)
        assert again.embeddings.usage.prompt_tokens == 3
        row = _embeddings_row(await rt.store.usage_by_task_type(user_id="ada"))
    assert (row.requests, row.prompt_tokens, row.completion_tokens) == (1, 3, 0)


async def test_embed_in_a_session_counts_in_the_session(tmp_path: Path) -> None:
    """In a session, the call counts in the session's usage, with the dimensions asked."""
    async with Application(_settings(tmp_path)) as rt:
        session = await rt.sessions.open("s1", "ada")
        result = await rt.embed(session.session_id, ["a b c"], dimensions=16)
        assert len(result.embeddings.vectors[0]) == 16
        usage = await rt.sessions.usage("s1", user_id="ada")
    assert (usage.requests, usage.prompt_tokens) == (1, 3)


async def test_a_failed_embedding_is_recorded_as_an_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    """Anthropic cannot embed: the call fails saying so, and the ledger says error, once."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    async with Application(_settings(tmp_path)) as rt:
        with pytest.raises(FallbacksExhaustedError, match="anthropic has no embeddings"):
            await rt.embed(None, ["x"], user_id="ada",
                           options={"provider": "anthropic", "model": "claude"})
        row = _embeddings_row(await rt.store.usage_by_task_type(user_id="ada"))
    assert (row.requests, row.errors) == (1, 1)


async def test_embed_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    """No inputs, no session and no user, or a closed session: clear errors, nothing recorded."""
    async with Application(_settings(tmp_path)) as rt:
        with pytest.raises(ValueError, match="at least one input"):
            await rt.embed(None, [], user_id="ada")
        with pytest.raises(ValueError, match="needs the user_id"):
            await rt.embed(None, ["x"])
        with pytest.raises(SessionNotFoundError):
            await rt.embed("nope", ["x"], user_id="ada")
        assert (await rt.store.usage_totals()).requests == 0
