"""Helpers shared by the socket state machine tests: client frames and joined sockets."""

from __future__ import annotations

import json
from typing import Any

from beamish.channels.socket_state import JoinRequested, PhoenixSocket

TOPIC = "conversation:42"


def frame(join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any) -> str:
    """A client text frame, as the JS client's JSON.stringify writes it."""
    return json.dumps([join_ref, ref, topic, event, payload], separators=(",", ":"))


def request_join(sock: PhoenixSocket, topic: str = TOPIC, ref: str = "5") -> JoinRequested:
    """Send a JS-client join (join_ref == ref) and return the JoinRequested it produced."""
    sock.receive_text(frame(ref, ref, topic, "phx_join", {}))
    events = sock.events_received()
    assert isinstance(events[-1], JoinRequested)
    return events[-1]


def joined(topic: str = TOPIC, ref: str = "5", **options: Any) -> PhoenixSocket:
    """A socket on which ``topic`` is joined as ``ref``, with output drained."""
    sock = PhoenixSocket(**options)
    assert sock.accept_join(request_join(sock, topic, ref))
    sock.frames_to_send()
    return sock


def error_reply(join_ref: str | None, ref: str, topic: str, response: str) -> str:
    """The exact text of an error phx_reply whose response JSON is ``response``."""
    jr = "null" if join_ref is None else f'"{join_ref}"'
    return f'[{jr},"{ref}","{topic}","phx_reply",{{"status":"error","response":{response}}}]'


UNMATCHED = '{"reason":"unmatched topic"}'
