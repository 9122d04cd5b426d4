"""What the wire client adds to the SDK's behaviour: its HTTP/1.1, over real local sockets.

Keep-alive and its pool, the framings of an answer, what it refuses, and its bounds; the
behaviour it shares with ``OpenAIProvider`` is pinned in ``test_sdk_providers`` and the
fault tests, which run through both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from beamish.llm.errors import ProviderTimeoutError, ProviderUnavailableError
from beamish.llm.providers import (
    ApiKey,
    ChatMessage,
    ChatRequest,
    EmbeddingRequest,
    OpenAIProvider,
    ProviderChunk,
)
from beamish.llm.providers.wire import OpenAIWireProvider
from beamish.llm.providers.wire.errors import WireTimeoutError
from beamish.llm.providers.wire.http1 import MAX_HEAD_BYTES, Connection, HTTPClient
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.llm.providers._raw_upstream import Answer, RawUpstream, chunked, completion

pytestmark = pytest.mark.anyio

ASK = (ChatMessage(role="user", content="hi"),)


@pytest.fixture(params=[pytest.param(("asyncio", {}), id="asyncio"),
                        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Each test on the standard loop and on uvloop, which beamish serve runs on (its
    transports are not asyncio's classes)."""
    return request.param  # type: ignore[no-any-return]


def _request(timeout_s: float = 5.0) -> ChatRequest:
    return ChatRequest(model="model-a", messages=ASK, timeout_s=timeout_s)


@pytest.fixture
async def upstream() -> AsyncIterator[RawUpstream]:
    """A raw upstream on this test's loop."""
    async with RawUpstream() as raw:
        yield raw


@pytest.fixture
async def wire(upstream: RawUpstream) -> AsyncIterator[OpenAIWireProvider]:
    """The wire client of the raw upstream, keyless."""
    provider = OpenAIWireProvider("raw", base_url=upstream.url, api_key=None)
    yield provider
    await provider.aclose()


async def _texts(chunks: AsyncIterator[ProviderChunk]) -> list[str]:
    return [chunk.text async for chunk in chunks]


async def test_calls_reuse_one_kept_alive_connection(wire: OpenAIWireProvider,
                                                     upstream: RawUpstream) -> None:
    """Whole calls, streams and model lists in turn go over one connection."""
    stream = chunked(b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n',
                     b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n'
                     b"data: [DONE]\n\n")
    listed = b'{"data": [{"id": "model-a"}]}'
    models = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(listed), listed)
    upstream.script(Answer(completion()), Answer(stream), Answer(completion()), Answer(models))
    assert (await wire.complete(_request())).text == "hi"
    assert await _texts(wire.stream(_request())) == ["a", ""]
    assert (await wire.complete(_request())).text == "hi"
    assert [m.model for m in await wire.list_models()] == ["model-a"]
    assert (upstream.connections, len(upstream.requests)) == (1, 4)


async def test_one_write_carries_head_and_body(wire: OpenAIWireProvider,
                                               upstream: RawUpstream) -> None:
    """The request is HTTP/1.1 with the keyless placeholder, no compression asked, and the
    JSON body its Content-Length says."""
    await wire.complete(_request())
    head, body = upstream.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert "Authorization: Bearer unused" in lines
    assert "Accept-Encoding: identity" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body == b'{"model":"model-a","messages":[{"role":"user","content":"hi"}]}'


async def test_a_server_closing_after_each_answer_gets_a_new_connection_each_call(
        wire: OpenAIWireProvider, upstream: RawUpstream) -> None:
    """Connection: close is obeyed: the next call opens a new connection."""
    closing = completion(headers="Connection: close\r\n")
    upstream.script(Answer(closing, "close"), Answer(closing, "close"))
    for _ in range(3):
        assert (await wire.complete(_request())).text == "hi"
    assert upstream.connections == 3


async def test_a_kept_connection_dropped_before_answering_is_retried_once_on_a_new_one(
        wire: OpenAIWireProvider, upstream: RawUpstream) -> None:
    """A reused connection closed before any byte of the answer (a keep-alive race) sends
    the request again on a new connection, once."""
    await wire.complete(_request())
    upstream.script(Answer(b"", "close"))
    assert (await wire.complete(_request())).text == "hi"
    assert (upstream.connections, len(upstream.requests)) == (2, 3)


async def test_a_new_connection_dropped_before_answering_is_not_retried(
        wire: OpenAIWireProvider, upstream: RawUpstream) -> None:
    """On a fresh connection the same drop is the server's failure: unavailable, one request."""
    upstream.script(Answer(b"", "close"))
    with pytest.raises(ProviderUnavailableError, match="could not be reached"):
        await wire.complete(_request())
    assert (upstream.connections, len(upstream.requests)) == (1, 1)


async def test_close_delimited_chunked_and_interim_answers_are_read(
        wire: OpenAIWireProvider, upstream: RawUpstream) -> None:
    """A body ending with the connection, a chunked one, and one after a 100 Continue."""
    plain = completion("until close")
    head, _, body = plain.partition(b"\r\n\r\n")
    until_close = head.split(b"\r\nContent-Length")[0] + b"\r\n\r\n" + body
    whole = b'{"choices": [{"message": {"content": "in chunks"}}]}'
    upstream.script(Answer(until_close, "close"),
                    Answer(chunked(whole[:10], whole[10:], head="")),
                    Answer(b"HTTP/1.1 100 Continue\r\n\r\n" + completion("after 100")))
    texts = [(await wire.complete(_request())).text for _ in range(3)]
    assert texts == ["until close", "in chunks", "after 100"]


@pytest.mark.parametrize(("raw", "said"), [
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
     "compressed (gzip)"),
    (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * MAX_HEAD_BYTES, "head is longer"),
    (b"SMTP ready\r\n\r\n", "not HTTP/1.1"),
])
async def test_answers_it_cannot_read_are_malformed(wire: OpenAIWireProvider,
                                                    upstream: RawUpstream, raw: bytes,
                                                    said: str) -> None:
    """A compressed answer (none was asked for), an endless head, or no HTTP at all."""
    upstream.script(Answer(raw, "close"))
    with pytest.raises(ProviderUnavailableError, match="form its API does not define") as caught:
        await wire.complete(_request())
    assert said in str(caught.value)


async def test_a_long_stream_read_slowly_arrives_whole(wire: OpenAIWireProvider,
                                                       upstream: RawUpstream) -> None:
    """Megabytes of events, read one at a time: reading pauses and resumes, nothing is lost."""
    event = b'data: {"choices": [{"delta": {"content": "' + b"y" * 1000 + b'"}}]}\n\n'
    done = b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
    upstream.script(Answer(chunked(*[event] * 2000, done)))
    count = 0
    async for chunk in wire.stream(_request()):
        count += len(chunk.text)
        await asyncio.sleep(0)  # a reader slower than the socket
    assert count == 2000 * 1000
    assert (await wire.complete(_request())).text == "hi"
    assert upstream.connections == 1


async def test_a_stream_left_early_closes_its_connection(wire: OpenAIWireProvider,
                                                         upstream: RawUpstream) -> None:
    """A consumer that stops mid-stream leaves the connection unreadable: it is not reused."""
    event = b'data: {"choices": [{"delta": {"content": "z"}}]}\n\n'
    unfinished = chunked(event, event).removesuffix(b"0\r\n\r\n")
    upstream.script(Answer(unfinished, "hold"))
    chunks = wire.stream(_request())
    assert (await anext(chunks)).text == "z"
    await chunks.aclose()  # type: ignore[attr-defined]
    assert (await wire.complete(_request())).text == "hi"
    assert upstream.connections == 2


async def test_the_pool_is_bounded_and_waits_for_a_free_connection(
        upstream: RawUpstream) -> None:
    """With one connection allowed, a second call waits for it, then reuses it; a wait
    longer than the timeout is a timeout."""
    client = HTTPClient(upstream.url, max_connections=1)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    try:
        first = await client.open(request, 5.0)
        second = asyncio.ensure_future(client.open(request, 5.0))
        with pytest.raises(WireTimeoutError, match=r"no connection was free within 0\.01 s"):
            await client.open(request, 0.01)
        assert not second.done()
        await first.read(5.0)
        client.release(first)
        connection = await second
        await connection.read(5.0)
        client.release(connection)
    finally:
        await client.aclose()
    assert (upstream.connections, len(upstream.requests)) == (1, 2)


async def test_a_cancelled_call_frees_its_connection(upstream: RawUpstream) -> None:
    """A call cancelled while waiting closes its connection and gives its slot back."""
    client = HTTPClient(upstream.url, max_connections=1)
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    upstream.script(Answer(b"", "hold"))
    try:
        hung = asyncio.ensure_future(client.open(request, 5.0))
        await upstream.received.wait()
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        connection = await client.open(request, 5.0)
        await connection.read(5.0)
        client.release(connection)
    finally:
        await client.aclose()
    assert upstream.connections == 2


async def test_silence_past_the_timeout_is_a_timeout(wire: OpenAIWireProvider,
                                                     upstream: RawUpstream) -> None:
    """A head that never comes is ProviderTimeoutError naming the limit."""
    upstream.script(Answer(b"HTTP/1.1 200 OK\r\n", "hold"))
    with pytest.raises(ProviderTimeoutError, match=r"did not answer within 0\.05 s"):
        await wire.complete(_request(timeout_s=0.05))


async def test_calls_to_the_fake_server_share_one_connection(server: FakeLLMServer) -> None:
    """Against uvicorn (the fake LLM server) too, whole calls, streams, embeddings and model
    lists all arrive over one connection."""
    provider = OpenAIWireProvider("w", base_url=server.openai_url,
                                  api_key=ApiKey(server.openai_key))
    try:
        for _ in range(2):
            await provider.complete(_request())
            await _texts(provider.stream(_request()))
            await provider.embed(EmbeddingRequest(model="e", inputs=("x",), timeout_s=5))
            await provider.list_models()
    finally:
        await provider.aclose()
    ports = {seen.client_port for seen in server.requests}
    assert len(server.requests) == 8
    assert len(ports) == 1


def test_what_it_refuses_to_be_made_with() -> None:
    """The openai kind (the SDK's), a URL that is not http(s), a key a header cannot carry."""
    with pytest.raises(ValueError, match="speaks for the kinds"):
        OpenAIWireProvider("o", base_url="http://h/v1", api_key=None, kind="openai")
    with pytest.raises(ValueError, match="http:// or https://"):
        OpenAIWireProvider("o", base_url="ftp://h/v1", api_key=None)
    with pytest.raises(ValueError, match="a header cannot carry"):
        OpenAIWireProvider("o", base_url="http://h/v1", api_key=ApiKey("sk-a\r\nX-Evil: 1"))


class _Transport(asyncio.Transport):
    """Stands in for the socket under one ``Connection``: records writes and reading state."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.reading = True
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def _exchanging(streaming: bool) -> tuple[Connection, _Transport, asyncio.Future[None]]:
    connection = Connection(asyncio.get_running_loop(), limit=1 << 24)
    transport = _Transport()
    connection.connection_made(transport)
    sent = asyncio.ensure_future(connection.exchange(b"request", 5.0, streaming=streaming))
    await asyncio.sleep(0)  # one turn: the request is written and the exchange waits
    assert transport.written == [b"request"]
    return connection, transport, sent


async def test_an_interim_answer_is_skipped_until_the_real_one() -> None:
    """A 100 Continue arriving alone completes nothing; the 200 after it is the answer."""
    connection, _, sent = await _exchanging(streaming=False)
    connection.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert not sent.done()
    connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await sent
    assert (connection.status, await connection.read(5.0)) == (200, b"ok")


async def test_a_stream_stops_reading_when_its_reader_falls_behind() -> None:
    """Past the high-water mark of unread bytes the socket is paused; reading them resumes."""
    connection, transport, sent = await _exchanging(streaming=True)
    connection.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    await sent
    piece = b"x" * (1 << 20)
    connection.data_received(b"%x\r\n%b\r\n" % (len(piece), piece))
    assert not transport.reading
    assert await connection.next_piece(5.0) == piece
    assert transport.reading


@pytest.mark.parametrize("made", [OpenAIProvider, OpenAIWireProvider])
async def test_an_in_stream_error_quotes_the_upstream_as_the_sdk_does(
        server: FakeLLMServer, made: type[OpenAIProvider | OpenAIWireProvider]) -> None:
    """The API's error chunk is an unreachable provider quoting its message, in both
    clients: not a malformed answer."""
    provider = made("w", base_url=server.openai_url, api_key=ApiKey(server.openai_key),
                    kind="ollama")
    server.script(Fault.error_event(after_tokens=1, message="the GPU caught fire"))
    try:
        with pytest.raises(ProviderUnavailableError) as caught:
            await _texts(provider.stream(_request()))
    finally:
        await provider.aclose()
    assert "w:model-a could not be reached: the GPU caught fire" in str(caught.value)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, signed by its own key: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "beamish test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_is_spoken_and_its_certificate_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over TLS a call is answered when the server's certificate is trusted (SSL_CERT_FILE),
    and refused as unreachable when it is not."""
    cert_file, key_file = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    async with RawUpstream(tls) as upstream:
        assert upstream.url.startswith("https://")
        untrusting = OpenAIWireProvider("tls", base_url=upstream.url, api_key=None)
        with pytest.raises(ProviderUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.complete(_request())
        await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        trusting = OpenAIWireProvider("tls", base_url=upstream.url, api_key=None)
        try:
            texts = [(await trusting.complete(_request())).text for _ in range(2)]
        finally:
            await trusting.aclose()
    assert texts == ["hi", "hi"]
    assert upstream.connections == 1  # both calls on one connection; the refused one never
    # finished its handshake
