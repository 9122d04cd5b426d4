"""Signed user tokens and the token authenticator."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from itsdangerous import URLSafeSerializer

from beamish.auth import (
    SECRET_KEY_ENV,
    AuthError,
    BadTokenSignatureError,
    MalformedTokenError,
    MissingTokenError,
    Principal,
    RevocationList,
    SigningKeyError,
    TokenAuthenticator,
    TokenExpiredError,
    TokenRevokedError,
    TokenSigner,
    issue_token,
    verify_token,
)
from beamish.auth.tokens import new_token_id

KEY = "a-long-enough-signing-key-for-tests"
OTHER_KEY = "another-long-enough-key-for-tests"


class Clock:
    """Seconds since the epoch, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def forge(payload: object, key: str = KEY) -> str:
    """A token signed exactly as TokenSigner signs, but with any payload (to test checks)."""
    serializer = URLSafeSerializer(
        key, salt="beamish.user-token.v1",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )
    token: str = serializer.dumps(payload)
    return token


# --- issuing and verifying ----------------------------------------------------------------


def test_a_user_token_round_trips() -> None:
    """A token names its user and carries the user scope only."""
    signer = TokenSigner(KEY)
    principal = signer.verify(signer.issue("ada"))
    assert principal == Principal("ada", frozenset({"user"}), None)
    assert not principal.is_admin


def test_an_admin_token_carries_both_scopes() -> None:
    """admin=True adds the admin scope; the admin may act for anyone, a user for itself."""
    signer = TokenSigner(KEY)
    admin = signer.verify(signer.issue("root", admin=True))
    assert admin.scopes == {"user", "admin"}
    assert admin.is_admin
    assert admin.can_act_for("ada")
    user = signer.verify(signer.issue("ada"))
    assert user.can_act_for("ada")
    assert not user.can_act_for("bob")


def test_the_module_functions_read_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """issue_token/verify_token default to BEAMISH_SECRET_KEY; an argument overrides it."""
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    token = issue_token("ada", admin=True)
    assert verify_token(token).is_admin
    assert verify_token(token, secret_key=KEY).user_id == "ada"
    with pytest.raises(BadTokenSignatureError):
        verify_token(token, secret_key=OTHER_KEY)


def test_a_missing_key_says_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BEAMISH_SECRET_KEY: SigningKeyError naming the variable."""
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    with pytest.raises(SigningKeyError, match=SECRET_KEY_ENV):
        issue_token("ada")


def test_a_short_key_is_refused_without_showing_it() -> None:
    """A key under 16 characters is refused; the message gives its length, not the key."""
    with pytest.raises(SigningKeyError) as refused:
        TokenSigner("hunter2")
    assert "7 characters" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_keys_rotate_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """With "new,old" old tokens still verify and new tokens are signed with the new key."""
    old_token = TokenSigner(OTHER_KEY).issue("ada")
    monkeypatch.setenv(SECRET_KEY_ENV, f"{KEY},{OTHER_KEY}")
    rotated = TokenSigner()
    assert rotated.verify(old_token).user_id == "ada"
    new_token = rotated.issue("bob")
    assert TokenSigner(KEY).verify(new_token).user_id == "bob"
    with pytest.raises(BadTokenSignatureError):
        TokenSigner(OTHER_KEY).verify(new_token)


def test_the_signer_repr_hides_the_key() -> None:
    """repr(signer) shows no key material."""
    assert KEY not in repr(TokenSigner(KEY))


@pytest.mark.parametrize("user_id", ["ada", "??>>~~", "ü-ñ 7", "x" * 256])
def test_tokens_are_url_safe_and_so_is_their_base64(user_id: str) -> None:
    """Any user id gives a token in [A-Za-z0-9_-.] whose base64 has no '+' or '/'.

    The phoenix JS client sends btoa(token) as a subprotocol; '/' is not allowed there.
    """
    token = TokenSigner(KEY).issue(user_id)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
    assert not set(base64.b64encode(token.encode()).decode()) & {"+", "/"}


@pytest.mark.parametrize(
    ("user_id", "expires_in"),
    [("", None), ("x" * 257, None), ("tab\there", None), ("ada", 0), ("ada", -5)],
)
def test_issue_refuses_unusable_arguments(user_id: str, expires_in: float | None) -> None:
    """Empty, over-long or control-character user ids and non-positive lifetimes are errors."""
    with pytest.raises(ValueError, match=r"user_id|expires_in"):
        TokenSigner(KEY).issue(user_id, expires_in=expires_in)


# --- expiry -------------------------------------------------------------------------------


def test_a_token_is_valid_until_its_expiry() -> None:
    """Issued at 1000 for 60 s: valid at 1059 (expires_at 1060), expired at 1060."""
    clock = Clock(1000.0)
    signer = TokenSigner(KEY, clock=clock)
    token = signer.issue("ada", expires_in=60)
    clock.now = 1059.0
    assert signer.verify(token).expires_at == 1060.0
    clock.now = 1060.0
    with pytest.raises(TokenExpiredError) as expired:
        signer.verify(token)
    assert expired.value.expired_at == 1060.0
    assert str(expired.value).startswith("token expired at 1970-01-01T00:17:40Z;")


# --- refusals -----------------------------------------------------------------------------


def _altered(token: str) -> str:
    payload, signature = token.split(".")
    other_payload = TokenSigner(KEY).issue("root", admin=True).split(".")[0]
    assert other_payload != payload
    return f"{other_payload}.{signature}"


@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (lambda: TokenSigner(OTHER_KEY).issue("ada"), BadTokenSignatureError,
         "bad token signature"),
        (lambda: _altered(TokenSigner(KEY).issue("ada")), BadTokenSignatureError,
         "bad token signature"),
        (lambda: "", MalformedTokenError, "the token is empty"),
        (lambda: "no-dot-here", MalformedTokenError, "two base64url parts"),
        (lambda: "a.b.c", MalformedTokenError, "two base64url parts"),
        (lambda: "é.é", MalformedTokenError, "two base64url parts"),
        (lambda: "a" * 5000 + ".b", MalformedTokenError, "longer than 4096"),
        (lambda: forge(["ada"]), MalformedTokenError, "not a JSON object"),
        (lambda: forge({"scp": ["user"]}), MalformedTokenError, "names no user"),
        (lambda: forge({"sub": "ada", "scp": ["root"]}), MalformedTokenError, "scopes"),
        (lambda: forge({"sub": "ada", "scp": []}), MalformedTokenError, "scopes"),
        (lambda: forge({"sub": "ada", "scp": ["user"], "exp": "soon"}), MalformedTokenError,
         "expiry is not a number"),
    ],
    ids=["other-key", "altered", "empty", "no-dot", "three-parts", "non-ascii", "huge",
         "list-payload", "no-user", "unknown-scope", "no-scope", "bad-expiry"],
)
def test_bad_tokens_are_refused_with_a_typed_error_that_hides_them(
    make: object, error: type[AuthError], says: str
) -> None:
    """Each way a token can be wrong has its error; no message contains the token or key."""
    token = make()  # type: ignore[operator]
    with pytest.raises(error) as refused:
        TokenSigner(KEY).verify(token)
    message = str(refused.value)
    assert says in message
    assert "beamish token create" in message
    assert KEY not in message
    for part in (token, *token.split(".")):  # nor any long part of it (the signature)
        assert len(part) < 8 or part not in message
    assert refused.value.__cause__ is None


# --- authenticators -----------------------------------------------------------------------


def test_the_token_authenticator_requires_a_token() -> None:
    """No token: MissingTokenError; a good token: its principal (params are ignored)."""
    signer = TokenSigner(KEY)
    authenticate = TokenAuthenticator(signer)
    with pytest.raises(MissingTokenError):
        authenticate(None, {"user_id": "ada"})
    assert authenticate(signer.issue("ada"), {"user_id": "mallory"}).user_id == "ada"


def test_a_token_verified_before_is_refused_once_revoked() -> None:
    """Remembering a verified token does not outlive its revocation."""
    signer, revoked = TokenSigner(KEY), RevocationList()
    authenticate = TokenAuthenticator(signer, revoked=revoked)
    token = signer.issue("ada", token_id="t1")
    assert authenticate(token, {}).user_id == "ada"
    revoked.add("t1")
    with pytest.raises(TokenRevokedError):
        authenticate(token, {})


def test_a_remembered_token_is_the_same_token_only() -> None:
    """A verified token's payload with another signature is refused, before and after."""
    signer = TokenSigner(KEY)
    token = signer.issue("ada")
    payload, signature = token.split(".")
    forged = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert signer.verify(token).user_id == "ada"
    with pytest.raises(BadTokenSignatureError):
        signer.verify(forged)


def test_token_ids_are_unique_url_safe_and_never_begin_with_a_dash() -> None:
    """An id is typed on command lines (``token revoke ID``), where a leading '-' reads as an
    option; one in 64 ids drawn from token_urlsafe began with one."""
    ids = [new_token_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{15}", token_id) for token_id in ids)
