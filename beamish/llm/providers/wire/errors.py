"""What can go wrong on the wire, before the provider turns it into a ``ProviderCallError``.

These never leave ``beamish.llm.providers.wire``: ``OpenAIWireProvider`` maps each to the
error ``OpenAIProvider`` gives for the same fault (``beamish.llm.providers.failures``)::

    WireError
    ├── WireTimeoutError       no connection, free slot or data within the timeout
    ├── WireConnectionError    refused, reset or closed early; TLS failed
    ├── WireProtocolError      not HTTP/1.1 we can read (also a ValueError: a malformed answer)
    ├── WireStatusError        an HTTP status other than 2xx, with the body and headers
    └── StreamErrorEvent       the API's in-stream ``{"error": ...}`` chunk

An answer longer than the bound is ``bounded.AnswerTooLargeError``, as it is for the SDKs.
"""

from __future__ import annotations


class WireError(Exception):
    """A failed exchange with an HTTP upstream; the message says what failed."""


class WireTimeoutError(WireError):
    """Nothing came within the timeout: no connection, no free slot in the pool, no data."""


class WireConnectionError(WireError):
    """The connection could not be made, or broke before the answer was whole.

    ``answered`` says whether any byte of the answer had arrived: a kept-alive connection the
    server closed while it sat idle fails before one, and the request may go again on a new one.
    """

    def __init__(self, message: str, *, answered: bool = True) -> None:
        super().__init__(message)
        self.answered = answered


class WireProtocolError(WireError, ValueError):
    """The answer is not HTTP/1.1 this client reads (bad framing, headers too long, an
    encoding it did not ask for)."""


class StreamErrorEvent(WireError):
    """The upstream ended a stream with the API's error chunk; the message is its words."""


class WireStatusError(WireError):
    """The upstream answered an HTTP status other than 2xx.

    Attributes:
        status: the status code.
        body: the answer's body as JSON if it is JSON, else its text.
        fallback: what to quote when the body holds no message: ``Error code: <status> -
            <body>``, as the openai SDK words it.
        headers: the answer's headers, names in lower case (for ``Retry-After``).
    """

    def __init__(self, status: int, body: object, fallback: str,
                 headers: dict[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.fallback = fallback
        self.headers = headers
