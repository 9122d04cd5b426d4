"""One-time sign-in links' codes, without a server: signed, expiring, not tokens."""

from __future__ import annotations

import pytest

from beamish.auth import AuthError, TokenSigner
from beamish.web import LINK_LIFETIME_S, SignInLinks
from beamish.web.errors import SignInLinkError

KEY = "sign-in-link-tests-key-0123456789"


class Clock:
    """Seconds, set by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_says_who_signs_in_until_when() -> None:
    """A code verifies to its user, scope, id and expiry."""
    clock = Clock()
    links = SignInLinks(KEY, clock=clock)
    code, made = links.issue("ada", admin=True)
    link = links.verify(code)
    assert link == made
    assert (link.user_id, link.admin, link.expires_at) == ("ada", True,
                                                           1_000_000 + LINK_LIFETIME_S)


def test_a_code_expires() -> None:
    """At its expiry a code is refused, saying so."""
    clock = Clock()
    links = SignInLinks(KEY, clock=clock)
    code, link = links.issue("ada", expires_in=60)
    clock.now = link.expires_at - 1
    assert links.verify(code).user_id == "ada"
    clock.now = link.expires_at
    with pytest.raises(SignInLinkError, match="expired"):
        links.verify(code)


@pytest.mark.parametrize("code", ["", "x" * 2000, "abc.def", "not-a-code"])
def test_a_malformed_code_is_refused(code: str) -> None:
    """Anything but a code this key made is refused with a typed error."""
    with pytest.raises(SignInLinkError):
        SignInLinks(KEY).verify(code)


def test_codes_and_tokens_are_not_interchangeable() -> None:
    """A code is not a token the API accepts, and a token is not a code, under one key."""
    code, _ = SignInLinks(KEY).issue("ada")
    with pytest.raises(AuthError):
        TokenSigner(KEY).verify(code)
    with pytest.raises(SignInLinkError):
        SignInLinks(KEY).verify(TokenSigner(KEY).issue("ada"))


def test_another_keys_code_is_refused() -> None:
    """A code made with another key does not verify."""
    code, _ = SignInLinks("another-key-0123456789abcdef").issue("ada")
    with pytest.raises(SignInLinkError, match="does not verify"):
        SignInLinks(KEY).verify(code)
