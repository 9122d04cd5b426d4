"""Server-sent events from bytes, without I/O: the decoder of the OpenAI SDK, on bytes.

``SSEDecoder.feed(piece)`` takes the answer's bytes as they arrive, cut anywhere, and returns
the events they complete, each ``(event, data)``: the ``event:`` field's value (None if none)
and the ``data:`` lines joined by ``\\n``, as bytes, for ``orjson`` to read. The rules are those
of the SDK's ``SSEDecoder`` (so a server gets the same answer from both clients):

- lines end with ``\\n``, ``\\r\\n`` or ``\\r`` (a ``\\r`` at the end of a piece is held back
  until the next one says whether a ``\\n`` follows);
- a line starting with ``:`` is a comment; ``field: value`` drops one space after the colon; a
  line without a colon is a field with an empty value; unknown fields are ignored;
- an empty line dispatches the event, if it has an ``event``, some ``data``, a ``retry``
  (an integer) or an ``id`` was ever seen (the SDK keeps the last id across events);
- what follows the last line end waits for the next piece (kept as a list of pieces: a line
  of many pieces is joined once, not once per piece).
"""

from __future__ import annotations

ServerSentEvent = tuple[str | None, bytes]
"""One event: its ``event`` field (None if it had none) and its data."""


class SSEDecoder:
    """Bytes in, events out; see the module docstring."""

    __slots__ = ("_data", "_event", "_held_cr", "_last_id", "_partial", "_retry")

    def __init__(self) -> None:
        """A decoder at the start of a stream."""
        self._partial: list[bytes] = []
        self._held_cr = False
        self._event: str | None = None
        self._data: list[bytes] = []
        self._retry = False
        self._last_id = False

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        """The events that ``piece``, appended to what came before, completes."""
        if self._held_cr:
            piece = b"\r" + piece
            self._held_cr = False
        if b"\r" in piece:
            if piece.endswith(b"\r"):
                piece, self._held_cr = piece[:-1], True
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in piece:
            if piece:
                self._partial.append(piece)
            return []
        if self._partial:
            self._partial.append(piece)
            piece = b"".join(self._partial)
            self._partial.clear()
        lines = piece.split(b"\n")
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                if self._event is not None or self._data or self._retry or self._last_id:
                    events.append((self._event, b"\n".join(self._data)))
                    self._event, self._data, self._retry = None, [], False
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value[:1] == b" " else value)
            elif line[:1] != b":":
                self._field(line)
        return events

    def end(self) -> list[ServerSentEvent]:
        """The stream ended: a last line without its line end is read; an event without its
        empty line is dropped, as the SDK drops it."""
        if self._held_cr:
            self._held_cr = False
            return self.feed(b"\n")
        if self._partial:
            return self.feed(b"\n")
        return []

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = True
        elif name == b"retry":
            try:
                int(value)
            except ValueError:
                return
            self._retry = True
