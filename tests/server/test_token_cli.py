"""``beamish token create``: a token the server accepts, printed on stdout."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from beamish.auth import SECRET_KEY_ENV, verify_token
from beamish.cli import main
from beamish.store import open_store
from beamish.web import SignInLinks

KEY = "c2lnbmluZy1rZXktZm9yLXRoZS1jbGktdGVzdHMtMzI="  # a Fernet key: the CLI checks


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Token ids are recorded in a fresh SQLite file, never in the checkout."""
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    monkeypatch.setenv("BEAMISH_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return url


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_KEY_ENV, KEY)
    return KEY


def test_create_prints_a_user_token(secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`token create --user ada --no-expiry` prints one line: a token for ada with the user
    scope (and no expiry: without --no-expiry it expires in 30 days, below)."""
    assert main(["token", "create", "--user", "ada", "--no-expiry"]) == 0
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


def test_a_token_expires_in_30_days_unless_asked(
        secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No --expires-in: 30 days; --expires-in takes seconds or a number with s, m, h, d."""
    before = time.time()
    assert main(["token", "create", "--user", "ada"]) == 0
    after = time.time()
    principal = verify_token(capsys.readouterr().out.strip(), secret_key=secret_key)
    assert principal.expires_at is not None  # int(): up to a second below the exact time
    assert before + 30 * 86400 - 1 <= principal.expires_at <= after + 30 * 86400
    before = time.time()
    assert main(["token", "create", "--user", "ada", "--expires-in", "12h"]) == 0
    after = time.time()
    principal = verify_token(capsys.readouterr().out.strip(), secret_key=secret_key)
    assert principal.expires_at is not None
    assert before + 12 * 3600 - 1 <= principal.expires_at <= after + 12 * 3600


@pytest.mark.parametrize("bad", ["soon", "0", "-5m", "inf"])
def test_a_bad_lifetime_is_a_usage_error(
        secret_key: str, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A lifetime that is not a positive duration is refused by the parser, with the value."""
    with pytest.raises(SystemExit) as exited:
        main(["token", "create", "--user", "ada", f"--expires-in={bad}"])
    assert exited.value.code == 2
    assert repr(bad) in capsys.readouterr().err


def test_tokens_are_listed_by_id_and_revoked(
        secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """create records the id (on stderr); list shows it; revoke marks it; unknown ids fail."""
    assert main(["token", "create", "--user", "ada"]) == 0
    created = capsys.readouterr()
    token_id = verify_token(created.out.strip(), secret_key=secret_key).token_id
    assert token_id is not None
    assert f"token id {token_id}" in created.err
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"{re.escape(token_id)}\s+ada\s+user\s", listed)
    assert main(["token", "revoke", token_id]) == 0
    assert f"revoked {token_id}" in capsys.readouterr().out
    assert main(["token", "list", "--user", "ada"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if token_id in line]
    assert re.search(r"Z\s*$", row[0])  # a revocation time in the last column
    assert main(["token", "revoke", "nope"]) == 1
    assert "no token has the id 'nope'" in capsys.readouterr().err


def test_an_id_that_begins_with_a_dash_is_revoked_after_double_dash(
        database: str, secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Ids issued before they were kept from starting with '-' are still revocable: argparse
    reads such an id as an option, the help says to put it after '--', and that works."""
    async def record() -> None:
        async with open_store(database) as store:
            await store.record_token("-dashed_id", "ada", admin=False, expires_at=None)

    anyio.run(record)
    with pytest.raises(SystemExit) as exited:
        main(["token", "revoke", "--help"])
    assert exited.value.code == 0
    assert "after '--'" in capsys.readouterr().out
    assert main(["token", "revoke", "--", "-dashed_id"]) == 0
    assert "revoked -dashed_id" in capsys.readouterr().out


@pytest.mark.parametrize("user", ["a b", "ada/admin", "_ada", "é", "x" * 129, "ada\n"])
def test_a_user_id_the_api_refuses_is_refused(
    secret_key: str, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    """An id outside the API's name pattern: exit status 1 saying the rule, no token printed."""
    assert main(["token", "create", "--user", user]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "is not a user id the API accepts" in captured.err
    assert "letters, digits and _.:@-" in captured.err


@pytest.mark.parametrize("user", ["ada", "ada@example.com", "tenant:42", "A" * 128])
def test_every_id_the_api_accepts_gets_a_token(
    secret_key: str, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    """Ids that match the pattern, emails included, are issued tokens as before."""
    assert main(["token", "create", "--user", user]) == 0
    assert verify_token(capsys.readouterr().out.strip(), secret_key=secret_key).user_id == user


def test_create_link_prints_a_one_time_sign_in_link(
        secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`token create --link` prints the web app's sign-in URL with a code for the user, which
    is no API token, and lists its id like a token's, to revoke it by."""
    assert main(["token", "create", "--user", "ada", "--admin", "--link",
                 "--base-url", "https://chat.example.org/ui/"]) == 0
    captured = capsys.readouterr()
    url = urlsplit(captured.out.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "chat.example.org",
                                                  "/ui/sign-in/link")
    link = SignInLinks(secret_key).verify(parse_qs(url.query)["code"][0])
    assert (link.user_id, link.admin) == ("ada", True)
    assert f"beamish token revoke {link.code_id}" in captured.err
    assert main(["token", "list", "--user", "ada"]) == 0
    assert link.code_id in capsys.readouterr().out
