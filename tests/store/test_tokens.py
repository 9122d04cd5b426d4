"""Issued token ids and their revocation, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from beamish.store import Store

pytestmark = pytest.mark.anyio


async def test_recorded_tokens_are_listed_newest_first(store: Store) -> None:
    """Each recorded token is listed with its user, scope and expiry; by user too."""
    expires = datetime.now(UTC) + timedelta(days=30)
    await store.record_token("t1", "ada", admin=False, expires_at=expires)
    await store.record_token("t2", "root", admin=True, expires_at=None)
    listed = await store.list_tokens()
    assert [(t.token_id, t.user_id, t.admin, t.revoked) for t in listed] == [
        ("t2", "root", True, False), ("t1", "ada", False, False)]
    assert listed[1].expires_at == expires
    assert [t.token_id for t in await store.list_tokens(user_id="ada")] == ["t1"]


async def test_revoking_is_kept_once_and_lists_the_id(store: Store) -> None:
    """Revoked ids are listed until they expire; a second revoke keeps the first time."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    await store.record_token("live", "ada", admin=False, expires_at=None)
    await store.record_token("gone", "ada", admin=False, expires_at=past)
    assert await store.revoked_token_ids() == frozenset()
    first = await store.revoke_token("live")
    assert first is not None
    assert first.revoked
    again = await store.revoke_token("live")
    assert again is not None
    assert again.revoked_at == first.revoked_at
    await store.revoke_token("gone")
    assert await store.revoked_token_ids() == {"live"}  # an expired token is refused anyway
    assert await store.revoke_token("nope") is None


async def test_a_token_is_consumed_once(store: Store) -> None:
    """consume_token revokes and returns a live token once; then, and for unknown ids, None."""
    await store.record_token("code", "ada", admin=True, expires_at=None)
    used = await store.consume_token("code")
    assert used is not None
    assert (used.user_id, used.admin, used.revoked) == ("ada", True, True)
    assert await store.consume_token("code") is None
    assert await store.consume_token("nope") is None
    assert await store.revoked_token_ids() == {"code"}
