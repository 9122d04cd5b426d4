"""``beamish token create``: a token the server accepts, printed on stdout."""

from __future__ import annotations

import pytest

from beamish.auth import SECRET_KEY_ENV, verify_token
from beamish.cli import main

KEY = "c2lnbmluZy1rZXktZm9yLXRoZS1jbGktdGVzdHMtMzI="  # a Fernet key: the CLI checks


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    return KEY


def test_create_prints_a_user_token(secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`token create --user ada` prints one line: a token for ada with the user scope."""
    assert main(["token", "create", "--user", "ada"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    principal = verify_token(out.strip(), secret_key=secret_key)
    assert (principal.user_id, principal.is_admin, principal.expires_at) == ("ada", False, None)


def test_admin_and_expiry_are_carried(
    secret_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--admin adds the admin scope; --expires-in sets an expiry."""
    assert main(["token", "create", "--user", "root", "--admin", "--expires-in", "3600"]) == 0
    principal = verify_token(capsys.readouterr().out.strip(), secret_key=secret_key)
    assert principal.is_admin
    assert principal.expires_at is not None


def test_a_missing_key_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without BEAMISH_SECRET_KEY: exit status 1, the variable named, nothing on stdout."""
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    assert main(["token", "create", "--user", "ada"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert SECRET_KEY_ENV in captured.err


def test_a_bad_user_id_is_a_clear_error(
    secret_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty user id: exit status 1 with the reason."""
    assert main(["token", "create", "--user", ""]) == 1
    assert "user_id must be a non-empty string" in capsys.readouterr().err


def test_create_requires_a_user(secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--user is required: argparse exits with status 2 and says so."""
    with pytest.raises(SystemExit) as exited:
        main(["token", "create"])
    assert exited.value.code == 2
    assert "--user" in capsys.readouterr().err
