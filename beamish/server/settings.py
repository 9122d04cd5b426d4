"""Server settings: ``[server]`` in ``beamish.toml`` or ``BEAMISH_SERVER__*`` variables.

Options (defaults in brackets):

* ``host`` ["127.0.0.1"], ``port`` [4000] — where ``beamish serve`` listens.
* ``dev_mode`` [False] — also trust a ``user_id`` param from callers without a token; only
  allowed when ``host`` is a loopback address, and announced loudly at start.
* ``idle_timeout_s`` [60] — a socket that sends no frame for this long is closed (1001).
* ``max_channels`` [100] — channels one socket may join.
* ``max_frame_bytes`` [1 MiB] — larger frames close the socket with 1009.
* ``outbound_frames`` [1024], ``outbound_bytes`` [8 MiB] — a client that falls this far behind
  is disconnected as a slow consumer (1008); its usage is still recorded.
* ``message_rate_per_s`` [10], ``message_burst`` [20] — each user's channel messages (a token
  bucket shared by all of the user's sockets); beyond it the reply is ``rate_limited``.
* ``max_history`` [50] — messages kept per conversation (and sent to the provider).
* ``max_conversations`` [10_000] — conversations whose history is kept (least recent dropped).
* ``shutdown_timeout_s`` [10] — how long SIGTERM waits for sockets and channels to end.
* ``request_log`` [True] — ``beamish serve`` logs one JSON line per LLM request (INFO on
  ``beamish.server.llm_requests``; see ``beamish.server.api.logs``); False leaves them out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerSettings(BaseModel):
    """How ``beamish serve`` listens and what each connection may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    dev_mode: bool = False
    idle_timeout_s: float = Field(default=60.0, gt=0)
    max_channels: int = Field(default=100, ge=1)
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbound_frames: int = Field(default=1024, ge=1)
    outbound_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    message_rate_per_s: float = Field(default=10.0, gt=0)
    message_burst: int = Field(default=20, ge=1)
    max_history: int = Field(default=50, ge=1)
    max_conversations: int = Field(default=10_000, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    request_log: bool = True
