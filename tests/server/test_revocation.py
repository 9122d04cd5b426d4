"""A revoked token is refused by a running server, over HTTP and on the socket."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from beamish.auth import RevocationList, TokenAuthenticator, TokenRevokedError, TokenSigner
from beamish.runtime import call
from beamish.server.revocations import NAME, REFRESH
from beamish.server.serve import BeamishServer
from tests._serve import SECRET, serve

pytestmark = pytest.mark.anyio


async def _issued(server: BeamishServer, user_id: str, token_id: str) -> str:
    await server.runtime.store.record_token(token_id, user_id, admin=False, expires_at=None)
    return TokenSigner(SECRET).issue(user_id, token_id=token_id)


async def _status(server: BeamishServer, token: str) -> int:
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


async def test_a_token_revoked_in_the_store_is_refused_from_the_next_refresh(
        beamish: BeamishServer) -> None:
    """Accepted; revoked in the store (as `beamish token revoke` does); refused once read."""
    token = await _issued(beamish, "ada", "t-ada")
    assert await _status(beamish, token) == 200
    await beamish.runtime.store.revoke_token("t-ada")
    assert await call(NAME, REFRESH) == 1
    assert await _status(beamish, token) == 401
    url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?vsn=2.0.0&token={token}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 403


async def test_a_server_starts_refusing_what_was_revoked_before(tmp_path: Path) -> None:
    """Revoked while the server was down: refused from its first request."""
    async with serve(tmp_path) as first:
        token = await _issued(first, "ada", "t-old")
        await first.runtime.store.revoke_token("t-old")
    async with serve(tmp_path) as second:
        assert await _status(second, token) == 401


def test_the_authenticator_refuses_a_listed_id_and_names_it() -> None:
    """Only tokens with a listed id are refused; tokens without an id are not revocable."""
    signer = TokenSigner(SECRET)
    revoked = RevocationList()
    authenticate = TokenAuthenticator(signer, revoked=revoked)
    kept, gone = signer.issue("ada", token_id="keep"), signer.issue("ada", token_id="gone")
    plain = signer.issue("ada")
    revoked.add("gone")
    assert authenticate(kept, {}).token_id == "keep"
    assert authenticate(plain, {}).token_id is None
    with pytest.raises(TokenRevokedError, match="token 'gone' was revoked"):
        authenticate(gone, {})
    revoked.replace(frozenset())
    assert authenticate(gone, {}).user_id == "ada"


def test_a_token_id_must_be_an_id() -> None:
    """issue refuses an id with other characters than [A-Za-z0-9_-] or too long."""
    signer = TokenSigner(SECRET)
    for bad in ("", "a b", "x" * 65, "é"):
        with pytest.raises(ValueError, match="token_id"):
            signer.issue("ada", token_id=bad)
