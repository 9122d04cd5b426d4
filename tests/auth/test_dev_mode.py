"""Dev mode: a user_id trusted on loopback servers only, tokens still checked, a loud banner."""

from __future__ import annotations

import pytest

from beamish.auth import (
    BadTokenSignatureError,
    DevModeAuthenticator,
    DevModeError,
    MalformedTokenError,
    MissingTokenError,
    Principal,
    TokenSigner,
    dev_mode_allowed,
    dev_mode_warning,
)

KEY = "a-long-enough-signing-key-for-tests"
OTHER_KEY = "another-long-enough-key-for-tests"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False),
     ("192.168.1.5", False), ("example.com", False), ("", False)],
)
def test_dev_mode_is_allowed_on_loopback_only(host: str, allowed: bool) -> None:
    """Loopback addresses and "localhost" allow dev mode; every other bind refuses it."""
    assert dev_mode_allowed(host) is allowed


def test_dev_mode_refuses_to_exist_off_loopback() -> None:
    """DevModeAuthenticator("0.0.0.0") raises DevModeError naming the host and the way out."""
    with pytest.raises(DevModeError, match=r"'0\.0\.0\.0'.*bind to 127\.0\.0\.1"):
        DevModeAuthenticator("0.0.0.0")


def test_dev_mode_trusts_user_id_but_still_checks_tokens() -> None:
    """user_id is trusted (user scope only); a token, when given, is verified as usual."""
    signer = TokenSigner(KEY)
    dev = DevModeAuthenticator("127.0.0.1", signer)
    assert dev(None, {"user_id": "ada"}) == Principal("ada")
    assert dev(signer.issue("root", admin=True), {"user_id": "ada"}).user_id == "root"
    with pytest.raises(BadTokenSignatureError):
        dev(TokenSigner(OTHER_KEY).issue("x"), {})
    with pytest.raises(MissingTokenError):
        dev(None, {})
    with pytest.raises(MalformedTokenError, match="dev mode user_id"):
        dev(None, {"user_id": "bad\nid"})


def test_the_dev_mode_warning_is_loud_and_names_the_address() -> None:
    """The banner says authentication is off, where, and what to use instead."""
    banner = dev_mode_warning("127.0.0.1:4000")
    assert "AUTHENTICATION IS OFF" in banner
    assert "127.0.0.1:4000" in banner
    assert "beamish token create" in banner
