"""The ids of issued tokens, and which of them are revoked (``api_tokens``).

A token issued with an id is recorded here — who it speaks for, whether it is an admin's,
when it expires — never the token itself, which only its holder has. Revoking sets
``revoked_at`` once; servers cache ``revoked_token_ids()`` (``beamish.auth.RevocationList``)
and refuse those tokens from then on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from beamish.store._backend import Backend, Row, utc_now
from beamish.store.models import TokenRecord


class TokenQueries(ABC):
    """The ``api_tokens`` methods of ``SqlStore``."""

    @property
    @abstractmethod
    def _token_backend(self) -> Backend: ...

    async def record_token(self, token_id: str, user_id: str, *, admin: bool,
                           expires_at: datetime | None) -> TokenRecord:
        """Record a token just issued with ``token_id``."""
        record = TokenRecord(token_id=token_id, user_id=user_id, admin=admin,
                             created_at=utc_now(), expires_at=expires_at)
        async with self._token_backend.transaction() as tx:
            await tx.execute(
                "INSERT INTO api_tokens (token_id, user_id, admin, created_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5)", record.token_id, record.user_id, record.admin,
                record.created_at, record.expires_at)
        return record

    async def list_tokens(self, *, user_id: str | None = None) -> list[TokenRecord]:
        """The recorded tokens, newest first, optionally of one user."""
        sql = "SELECT * FROM api_tokens"
        args: list[object] = []
        if user_id is not None:
            sql += " WHERE user_id = $1"
            args.append(user_id)
        rows = await self._token_backend.reader.fetch(
            sql + " ORDER BY created_at DESC, token_id", *args)
        return [_record(row) for row in rows]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Revoke the token (once: a second call keeps the first time); None if unknown."""
        async with self._token_backend.transaction() as tx:
            await tx.execute("UPDATE api_tokens SET revoked_at = $2 "
                             "WHERE token_id = $1 AND revoked_at IS NULL", token_id, utc_now())
            row = await tx.fetchrow("SELECT * FROM api_tokens WHERE token_id = $1", token_id)
        return None if row is None else _record(row)

    async def consume_token(self, token_id: str) -> TokenRecord | None:
        """Revoke the token if it is not revoked yet, and return it; None if it is unknown or
        was revoked before, so that a single-use code (a sign-in link's) works once, also
        between servers sharing the database: the conditional update is the one decision."""
        async with self._token_backend.transaction() as tx:
            row = await tx.fetchrow("UPDATE api_tokens SET revoked_at = $2 "
                                    "WHERE token_id = $1 AND revoked_at IS NULL RETURNING *",
                                    token_id, utc_now())
        return None if row is None else _record(row)

    async def revoked_token_ids(self) -> frozenset[str]:
        """The ids of revoked tokens that have not expired (expired ones are refused anyway)."""
        rows = await self._token_backend.reader.fetch(
            "SELECT token_id, expires_at FROM api_tokens WHERE revoked_at IS NOT NULL")
        now = utc_now()
        return frozenset(token_id for token_id, expires in map(_id_and_expiry, rows)
                         if expires is None or expires > now)


def _record(row: Row) -> TokenRecord:
    return TokenRecord.model_validate(dict(row))


def _id_and_expiry(row: Row) -> tuple[str, datetime | None]:
    expires = row["expires_at"]
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    return str(row["token_id"]), expires


__all__ = ["TokenQueries"]
