"""One-time sign-in links (sans-I/O): ``beamish token create --user U --link`` prints
``<base>/sign-in/link?code=...``.

A code is a signed statement "user U (admin or not) may sign in once, until T, as code C",
signed with a key derived from ``BEAMISH_SECRET_KEY`` under its own salt, so a code is never
a token the API accepts, nor a token a code. Its id ``C`` is recorded in the store when the
link is made (it is listed by ``beamish token list`` and revoked by ``beamish token revoke
C``) and consumed when the link is used (``Store.consume_token``): a link works once.

Options of :class:`SignInLinks` (defaults in brackets): ``secret_key``
[``BEAMISH_SECRET_KEY``]; ``clock`` [``time.time``]. A code lives
:data:`LINK_LIFETIME_S` seconds unless ``issue`` is told otherwise.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadData, BadSignature, URLSafeSerializer

from beamish.auth.tokens import check_user_id, new_token_id, secret_keys_from
from beamish.web.errors import SignInLinkError

LINK_LIFETIME_S: Final = 15 * 60
MAX_CODE_LENGTH: Final = 1024
_SALT: Final = "beamish.sign-in-link.v1"


@dataclass(frozen=True, slots=True)
class LinkCode:
    """What a verified code allows: ``user_id`` signs in once, as ``code_id``."""

    user_id: str
    admin: bool
    code_id: str
    expires_at: float


class SignInLinks:
    """Issues and verifies sign-in codes with one key set (see the module docstring)."""

    __slots__ = ("_clock", "_serializer")

    def __init__(self, secret_key: str | bytes | Sequence[str | bytes] | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        keys = secret_keys_from(secret_key)
        self._serializer: URLSafeSerializer = URLSafeSerializer(
            list(reversed(keys)), salt=_SALT,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256})
        self._clock = clock

    def issue(self, user_id: str, *, admin: bool = False,
              expires_in: float = LINK_LIFETIME_S) -> tuple[str, LinkCode]:
        """A fresh code for ``user_id``, and what it says (record its ``code_id``)."""
        check_user_id(user_id)
        if not expires_in > 0:
            raise ValueError(f"expires_in must be seconds > 0, got {expires_in!r}")
        link = LinkCode(user_id, admin, new_token_id(), float(int(self._clock() + expires_in)))
        code: str = self._serializer.dumps(
            {"sub": user_id, "adm": admin, "cid": link.code_id, "exp": int(link.expires_at)})
        return code, link

    def verify(self, code: str) -> LinkCode:
        """What ``code`` allows.

        Raises:
            SignInLinkError: malformed, badly signed or expired.
        """
        if not code or len(code) > MAX_CODE_LENGTH:
            raise SignInLinkError("this sign-in link has no usable code; ask for a new link "
                                  "(beamish token create --user U --link)")
        try:
            payload = self._serializer.loads(code)
        except (BadSignature, BadData):
            raise SignInLinkError("this sign-in link is not one this server made (its code "
                                  "does not verify); ask for a new link") from None
        link = _link(payload)
        if self._clock() >= link.expires_at:
            raise SignInLinkError("this sign-in link has expired; ask for a new link")
        return link


def _link(payload: object) -> LinkCode:
    if not isinstance(payload, dict):
        raise SignInLinkError("this sign-in link's code is unreadable; ask for a new link")
    user_id, admin = payload.get("sub"), payload.get("adm")
    code_id, expires = payload.get("cid"), payload.get("exp")
    if not (isinstance(user_id, str) and user_id and isinstance(admin, bool)
            and isinstance(code_id, str) and code_id
            and isinstance(expires, int) and not isinstance(expires, bool)):
        raise SignInLinkError("this sign-in link's code is unreadable; ask for a new link")
    return LinkCode(user_id, admin, code_id, float(expires))


__all__ = ["LINK_LIFETIME_S", "LinkCode", "SignInLinks"]
