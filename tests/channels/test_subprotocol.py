"""The upgrade request: subprotocol selection, the bearer token, query params and vsn."""

from __future__ import annotations

import base64

import pytest

from beamish.channels.errors import AuthTokenError, HandshakeError, UnsupportedVersionError
from beamish.channels.handshake import (
    ConnectRequest,
    check_vsn,
    parse_query,
    read_connect_request,
    select_subprotocol,
    token_from_subprotocols,
)


def js_auth_protocol(token: str) -> str:
    """The subprotocol the phoenix JS client 1.8 builds: btoa(token) without '=' padding."""
    return "base64url.bearer.phx." + base64.b64encode(token.encode("latin-1")).decode().rstrip("=")


# --- subprotocol selection ---------------------------------------------------------------


def test_selects_phoenix_when_the_client_offers_it() -> None:
    """A client with authToken offers phoenix and the bearer protocol; phoenix is selected."""
    assert select_subprotocol(["phoenix", js_auth_protocol("abc")]) == "phoenix"


def test_selects_nothing_when_nothing_is_offered() -> None:
    """A client without authToken offers no subprotocol and must get none back."""
    assert select_subprotocol([]) is None


def test_selects_nothing_when_phoenix_is_not_among_the_offers() -> None:
    """Other subprotocols alone are not selected."""
    assert select_subprotocol(["graphql-ws", "mqtt"]) is None


# --- the bearer token --------------------------------------------------------------------


def test_reads_the_token_exactly_as_the_js_client_encodes_it() -> None:
    """The phoenix JS client's own test: authToken "1234" becomes base64url.bearer.phx.MTIzNA."""
    assert token_from_subprotocols(["phoenix", "base64url.bearer.phx.MTIzNA"]) == "1234"


@pytest.mark.parametrize("token", ["a", "ab", "abc", "abcd", "eyJ1c2VyIjoiYWRhIn0.sig-_~"])
def test_every_padding_length_round_trips(token: str) -> None:
    """Tokens whose base64 needed 0, 1 or 2 '=' decode once the client stripped the padding."""
    assert token_from_subprotocols(["phoenix", js_auth_protocol(token)]) == token


def test_standard_and_urlsafe_alphabets_both_decode() -> None:
    """A token whose base64 has '+' and '/' decodes in btoa's form and in base64url's form."""
    standard = js_auth_protocol("??>???")
    assert standard.endswith("Pz8+Pz8/")
    urlsafe = standard.replace("+", "-").replace("/", "_")
    assert token_from_subprotocols([standard]) == "??>???"
    assert token_from_subprotocols([urlsafe]) == "??>???"


def test_a_padded_token_also_decodes() -> None:
    """A client that keeps the '=' padding is understood too."""
    assert token_from_subprotocols(["base64url.bearer.phx.YQ=="]) == "a"


def test_no_bearer_protocol_means_no_token() -> None:
    """Without a base64url.bearer.phx. subprotocol there is no token (None)."""
    assert token_from_subprotocols(["phoenix"]) is None
    assert token_from_subprotocols([]) is None


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("", "carries no token"),
        ("===", "carries no token"),
        ("a*b", "not the base64 of a UTF-8 string"),
        ("abcde", "not the base64 of a UTF-8 string"),
        ("_w", "not the base64 of a UTF-8 string"),  # decodes to b"\xff": not UTF-8
    ],
)
def test_an_undecodable_token_is_an_auth_token_error(encoded: str, message: str) -> None:
    """An empty, non-base64 or non-UTF-8 token raises AuthTokenError, a HandshakeError (403)."""
    with pytest.raises(AuthTokenError, match=message) as caught:
        token_from_subprotocols(["phoenix", "base64url.bearer.phx." + encoded])
    assert isinstance(caught.value, HandshakeError)


# --- query string and version ------------------------------------------------------------


def test_parses_the_js_client_query_string() -> None:
    """token, vsn and nested params arrive as written, percent-decoded."""
    assert parse_query("token=a%2Bb&user%5Bid%5D=7&vsn=2.0.0") == {
        "token": "a+b",
        "user[id]": "7",
        "vsn": "2.0.0",
    }


def test_the_last_repeated_param_wins_and_blanks_are_kept() -> None:
    """A repeated name keeps its last value; a blank value is kept as ""."""
    assert parse_query("a=1&a=2&b=") == {"a": "2", "b": ""}


def test_too_many_params_refuse_the_handshake() -> None:
    """More than 256 query parameters raise HandshakeError."""
    with pytest.raises(HandshakeError, match="more than 256 parameters"):
        parse_query("&".join(f"p{n}=1" for n in range(300)))


def test_a_query_string_over_8_kib_refuses_the_handshake() -> None:
    """Connect params live as long as the socket: a query of more than 8 KiB is refused."""
    parse_query("p=" + "x" * (8 * 1024 - 2))
    with pytest.raises(HandshakeError, match="8193 bytes; at most 8192"):
        parse_query("p=" + "x" * (8 * 1024 - 1))


@pytest.mark.parametrize("vsn", ["2.0.0", "2.0.7"])
def test_v2_versions_are_accepted(vsn: str) -> None:
    """Any 2.0.x is V2, as Phoenix's "~> 2.0.0" requirement matches."""
    assert check_vsn(vsn) == vsn


@pytest.mark.parametrize(
    ("vsn", "shown"),
    [(None, "1.0.0"), ("1.0.0", "1.0.0"), ("2.1.0", "2.1.0"), ("3.0.0", "3.0.0"), ("2", "2")],
)
def test_other_versions_are_refused(vsn: str | None, shown: str) -> None:
    """A missing vsn (V1), V1 and other versions raise UnsupportedVersionError naming it."""
    with pytest.raises(UnsupportedVersionError, match=f"'{shown}' is not supported") as caught:
        check_vsn(vsn)
    assert isinstance(caught.value, HandshakeError)


# --- the whole request -------------------------------------------------------------------


def test_connect_request_from_a_client_with_auth_token() -> None:
    """The bearer subprotocol supplies the token and phoenix is selected."""
    request = read_connect_request("vsn=2.0.0", ["phoenix", js_auth_protocol("t0k")])
    assert request == ConnectRequest({"vsn": "2.0.0"}, "2.0.0", "t0k", "phoenix")


def test_connect_request_from_a_client_with_a_token_param() -> None:
    """Without a bearer subprotocol the token param is used and no subprotocol selected."""
    request = read_connect_request("token=abc&vsn=2.0.0", [])
    assert (request.token, request.subprotocol) == ("abc", None)


def test_the_subprotocol_token_wins_over_the_param() -> None:
    """When both carry a token, the subprotocol's (kept out of URLs and logs) is used."""
    request = read_connect_request("token=from-url&vsn=2.0.0", ["phoenix", js_auth_protocol("hdr")])
    assert request.token == "hdr"


def test_no_token_at_all_and_a_blank_token_param_are_none() -> None:
    """No token anywhere, or token= left blank, gives token None."""
    assert read_connect_request("vsn=2.0.0", []).token is None
    assert read_connect_request("token=&vsn=2.0.0", []).token is None


def test_connect_request_without_vsn_is_refused() -> None:
    """A V1 client (no vsn) is refused at the upgrade."""
    with pytest.raises(UnsupportedVersionError):
        read_connect_request("token=abc", [])
