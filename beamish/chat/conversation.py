"""The conversation channel: ``conversation:<id>`` — chat with a user's LLM, token by token.

Join params: ``session_id`` (the session is resumed if open, else created under that id; a
new one when absent) and ``last_seen_id`` (the client's newest history id, a JSON integer
from 0 to 2**63 - 1: the messages after it are pushed as ``history`` right after the ok
reply). The conversation id (the topic after ``conversation:``) and the session id are 1 to
128 letters, digits and ``_.:@-``, starting with a letter or digit — the HTTP API's session
ids. Bad params refuse the join with ``{"reason": "bad_request", "detail"}``. The reply is
``{"conversation_id", "session_id", "last_id"}``. Joining binds the channel to the user's
session context and keeps it from being evicted or expired while joined
(``Sessions.hold``). Conversation and session ids are per user: ``conversation:default`` of
one user and of another are two conversations, and so are their sessions ``s1``. With the
user's sessions all busy at their limit the join is refused (``session_limit``). A
conversation not in memory is loaded from the store (``ConversationHistory.load``): a new
one beyond the user's stored conversations is refused (``too_many_conversations``), and an
unreachable store refuses the join (``store_unavailable``).

Client events (payloads are validated; a bad one gets ``{"reason": "bad_request", "detail"}``):

* ``message`` ``{content, task_type?, overrides?}`` → ok ``{request_id}``, then pushes
  ``token`` ``{request_id, delta}`` while the provider streams, then ``done`` ``{request_id,
  usage, provider, model, offline, config: {field: layer}, warnings}`` once the usage is
  durable — or ``error`` ``{request_id, reason, detail}``: ``reason`` is typed
  (``provider_unavailable``, ``provider_rejected``, ``no_usable_provider``, ``busy``,
  ``failed``) and ``detail`` says it in words — for a provider, its name and model once,
  never the provider's own error text (that goes to the server's log). ``overrides`` are
  request values (provider, model, temperature, max_tokens, top_p, timeout_s, max_retries,
  fallback_models).
  The reply and the tokens go out as they are made, except those made in the same turn of
  the event loop as the end of the stream: they go with ``done`` (or ``error``), in one
  write to the connection, 50 ms later at most. So an answer complete at once (the echo
  provider's) reaches the client in one write.
  ``done`` also carries ``message_id``, the answer's id in the conversation. A question
  beyond the conversation's stored bounds gets ``conversation_full``; one made while too
  many messages wait to be stored, ``busy``.
* ``regenerate`` ``{task_type?, overrides?}`` → as ``message``, without a new question: the
  last answer is dropped (its id goes to the new one; the store drops it too) and the last
  question is answered again, so the history holds it once. Refused (``busy``) while an
  answer streams, and (``bad_request``) without a question.
* ``cancel`` ``{request_id}`` → ok; the stream stops, its partial usage is recorded as
  cancelled and ``error`` ``{request_id, reason: "cancelled"}`` follows.
* ``get_config`` ``{task_type?}`` → ok with the resolved configuration and its provenance.
* ``set_preference`` ``{provider, model, task_type?, parameters?}`` → stores the user's
  default (or the task's override) through the config cache, so this session — and every
  other of the user — uses it from the next message on; ok with the new resolution.
* ``usage`` → ok ``{session, user}`` totals.

Each answer streams in its own task, owned by the channel: the channel keeps serving (a
``cancel`` reaches it mid-stream), the task pushes ``token``, ``done`` and ``error`` itself
(waiting while the socket's mailbox is full, so a slow client slows the provider down rather
than buffering its whole answer), and when the channel ends — the client leaves, the socket
closes as a slow consumer, the server shuts down — its ``terminate`` cancels the tasks, which
record the usage they saw. A task that fails in a way it does not expect crashes the channel,
as a linked worker would: the client gets ``phx_error``. The history of the conversation
(``ConversationHistory``) is shared through the socket assigns (``"runtime"`` and
``"history"``) and sent to the provider with each message.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from beamish.application import Application, SessionStream
from beamish.channels.channel import (
    Channel,
    JoinRefused,
    ReplyError,
    ReplyRef,
    SocketInfo,
)
from beamish.chat.errors import ChatError
from beamish.chat.history import Conversation, ConversationHistory
from beamish.llm.errors import LLMError
from beamish.llm.hierarchy import ConfigRequest, ResolvedConfig
from beamish.llm.providers.base import ChatMessage
from beamish.llm.providers.stream import StreamDone, StreamError, TokenDelta
from beamish.request_log import (
    LLMRequestLog,
    Outcome,
    elapsed_ms,
    llm_requests_logged,
    log_llm_request,
)
from beamish.runtime import NOREPLY, ExitCallback, ExitReason, on_exit, send
from beamish.runtime.loops import LoopLocal, NextTurn
from beamish.sessions.errors import (
    SessionError,
    SessionLimitError,
    SessionNotFoundError,
    SessionOwnerError,
)
from beamish.store import LLMParameters, Provider, StoreError, TaskOverride
from beamish.store.errors import StoreUnavailableError, UsageBackpressureError
from beamish.store.models import Name, new_request_id
from beamish.store.text import NO_NUL

_M = TypeVar("_M", bound=BaseModel)

MAX_CONTENT: Final = 32_000
#: Conversation and session ids and task types: the HTTP API's NAME_PATTERN
#: (beamish.server.api.models),
#: repeated here because the chat layer sits below the server.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
_ID: Final = re.compile(ID_PATTERN)
MAX_HISTORY_ID: Final = 2**63 - 1
_MAX_LOC: Final = 64  # characters of a client-chosen key quoted in a bad_request detail
_MAX_PROBLEMS: Final = 8  # problems listed in one bad_request detail
CANCELLED: Final = "cancelled"
_WAITING_EVENTS: Final = frozenset({"get_config", "set_preference", "usage"})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinParams(BaseModel):
    """What a client may send with ``phx_join``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str | None = Field(default=None, pattern=ID_PATTERN)
    # Strict: a JSON integer only (not 1.0, "3", true); 1e999 reads as an infinite float.
    last_seen_id: int = Field(default=0, ge=0, le=MAX_HISTORY_ID, strict=True)


class MessageIn(_In):
    """``message``: one user turn. Its content holds no NUL character (U+0000), which the
    conversation's store could not hold (``beamish.store.text``): such a message is a
    ``bad_request``, as any other fault of it is."""

    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT), NO_NUL]
    task_type: str = Field(default="chat", pattern=ID_PATTERN)
    overrides: ConfigRequest | None = None


class RegenerateIn(_In):
    """``regenerate``: answer the last question again, in place of its answer."""

    task_type: str = Field(default="chat", pattern=ID_PATTERN)
    overrides: ConfigRequest | None = None


class CancelIn(_In):
    """``cancel``: stop a stream."""

    request_id: str = Field(min_length=1, max_length=64)


class GetConfigIn(_In):
    """``get_config``."""

    task_type: str = Field(default="chat", pattern=ID_PATTERN)


class SetPreferenceIn(_In):
    """``set_preference``: the user's default, or one task's override."""

    provider: Provider
    model: Name
    task_type: str | None = Field(default=None, pattern=ID_PATTERN)
    parameters: LLMParameters = LLMParameters()


class ConversationChannel(Channel):
    """One joined conversation; see the module docstring."""

    # Class defaults until the first message: most joined channels are idle, and two more
    # entries in each one's instance dict cost more than the empty dict itself.
    streams: dict[str, asyncio.Task[None]] = {}  # noqa: RUF012 - replaced, never mutated
    _streams_watch: ExitCallback | None = None
    _loop: asyncio.AbstractEventLoop  # from the first message on

    async def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> Any:
        joining = _parse(JoinParams, params)
        self.runtime: Application = socket.assigns["runtime"]
        history: ConversationHistory = socket.assigns["history"]
        self.conversation_id = topic.partition(":")[2]
        if _ID.fullmatch(self.conversation_id) is None:
            raise JoinRefused("bad_request", detail=(
                "the topic is conversation:<id>, the id 1 to 128 letters, digits and "
                "_.:@- starting with a letter or digit"))
        try:
            conversation = await history.load(self.conversation_id, socket.user_id)
        except ChatError as error:
            raise JoinRefused(error.reason, detail=str(error)) from error
        except StoreError as error:
            raise JoinRefused("store_unavailable", detail=str(error)) from error
        self.conversation: Conversation = conversation
        sessions = self.runtime.sessions
        try:
            info = await sessions.open(joining.session_id, socket.user_id)
            # However the channel ends, the session is free to go again.
            on_exit(self.ref, sessions.hold(info.session_id, user_id=socket.user_id).release)
        except SessionLimitError as error:
            raise JoinRefused("session_limit", detail=str(error)) from error
        except SessionNotFoundError as error:  # closed between the open and the hold
            raise JoinRefused("session_closed", detail=str(error)) from error
        except StoreUnavailableError as error:
            raise JoinRefused("store_unavailable", detail=str(error)) from error
        self.session_id = info.session_id
        missed = conversation.since(joining.last_seen_id)
        if joining.last_seen_id and missed:
            self.push("history", {"messages": [m.to_json() for m in missed]})
        return {"conversation_id": self.conversation_id, "session_id": self.session_id,
                "last_id": conversation.last_id}

    def handle_in(self, event: str, payload: Any) -> Any:
        # A plain def: a message starts its answer's task and a cancel cancels one, so an
        # idle channel answers them as they are read (see Channel.take_message); the events
        # that wait for the session or the store are answered by the awaitable returned.
        if event == "message":
            return self._message(_parse(MessageIn, payload))
        if event == "cancel":
            return self._cancel(_parse(CancelIn, payload))
        if event == "regenerate":
            return self._regenerate(_parse(RegenerateIn, payload))
        if event in _WAITING_EVENTS:
            return self._handle_waiting(event, payload)
        return super().handle_in(event, payload)

    async def _handle_waiting(self, event: str, payload: Any) -> Any:
        try:
            if event == "get_config":
                task = _parse(GetConfigIn, payload).task_type
                return _config_json(await self.runtime.sessions.enhance(
                    self.session_id, task_type=task, user_id=self.socket.user_id))
            if event == "set_preference":
                return await self._set_preference(_parse(SetPreferenceIn, payload))
            return await self._usage()
        except (SessionError, StoreError, LLMError) as error:
            raise ReplyError(_reason(error), _detail(error)) from error

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, _StreamCrashed):
            raise message.error  # as a linked worker's crash would: phx_error to the client
        return super().handle_info(message)

    async def terminate(self, reason: ExitReason) -> None:
        # The channel ended: stop the answers still streaming. Each records the usage it
        # saw on its way out (without waiting, as cancelled code must), so this wait is short.
        streams = self._stop_streams()
        if streams:
            await asyncio.wait(streams)

    def _stop_streams(self, *exited: object) -> list[asyncio.Task[None]]:
        """Cancel every answer still streaming (also the on_exit callback of a kill)."""
        streams = list(self.streams.values())
        for task in streams:
            task.cancel()
        return streams

    # -- events ------------------------------------------------------------------------------

    def _message(self, message: MessageIn) -> object:
        request_id = new_request_id()
        conversation = self.conversation
        try:
            conversation.check_room(len(message.content))
        except ChatError as error:
            raise ReplyError(error.reason, str(error)) from error
        message_id = conversation.add("user", message.content, request_id)
        conversation.store(message_id, "user", message.content, request_id)
        return self._start(message, request_id)

    def _regenerate(self, again: RegenerateIn) -> object:
        """Answer the last question anew, in place of its answer (whose id the new one
        takes); the question is not asked twice."""
        if self.streams:
            raise ReplyError("busy", "an answer is still streaming; stop it first")
        try:
            self.conversation.remove_last_answer()
        except ChatError as error:
            raise ReplyError(error.reason, str(error)) from error
        return self._start(again, new_request_id())

    def _start(self, message: MessageIn | RegenerateIn, request_id: str) -> object:
        """Start the task answering the conversation so far."""
        job = StreamJob(
            runtime=self.runtime, session_id=self.session_id, user_id=self.socket.user_id,
            task_type=message.task_type, options=message.overrides,
            messages=self.conversation.prompt(), request_id=request_id)
        if self._streams_watch is None:
            # A channel that is killed runs no terminate: its answers must stop all the same.
            self._streams_watch = on_exit(self.ref, self._stop_streams)
            self.streams = {}
            # Kept: on Python 3.11 asking for the running loop is a system call (getpid).
            self._loop = asyncio.get_running_loop()
        # The answer's task sends the ok reply, with its first frames (see _AnswerFrames).
        task = self._loop.create_task(self._answer(job, self.reply_ref()), name=request_id)
        self.streams[request_id] = task
        return NOREPLY

    def _cancel(self, cancel: CancelIn) -> dict[str, Any]:
        task = self.streams.get(cancel.request_id)
        if task is None:
            raise ReplyError("not_found", f"no stream {cancel.request_id!r} is running")
        task.cancel()  # it records the usage it saw, then reports "cancelled"
        return {"request_id": cancel.request_id}

    async def _set_preference(self, pref: SetPreferenceIn) -> dict[str, Any]:
        user = self.socket.user_id
        users = self.runtime.users
        if pref.task_type is None:
            await users.set_default(user, pref.provider, pref.model, actor=user)
        else:
            await users.set_task_override(user, TaskOverride(
                task_type=pref.task_type, provider=pref.provider, model=pref.model,
                parameters=pref.parameters), actor=user)
        return _config_json(await self.runtime.sessions.enhance(
            self.session_id, task_type=pref.task_type or "chat", user_id=user))

    async def _usage(self) -> dict[str, Any]:
        session = await self.runtime.sessions.usage(self.session_id, user_id=self.socket.user_id)
        user = await self.runtime.users.get_usage_stats(self.socket.user_id)
        return {"session": _totals_json(session), "user": _totals_json(user.totals)}

    async def _answer(self, job: StreamJob, reply: ReplyRef) -> None:
        """The task of one answer (``_stream_answer``): it leaves ``streams`` as it ends, and
        an error it did not expect crashes the channel, as a linked worker's would.

        (Cancelled before its first step, it runs none of this: only the channel's end
        cancels a task that soon — a client learns the request id it could cancel from the
        reply the task sends — and the channel's ``streams`` go with it.)
        """
        try:
            await self._stream_answer(job, reply)
        except Exception as error:
            send(self.ref, _StreamCrashed(error))
        finally:
            del self.streams[job.request_id]

    async def _stream_answer(self, job: StreamJob, reply: ReplyRef) -> None:
        """Reply ok, stream one answer to the client, then record its usage and say done (or
        error).

        ``done`` is pushed only after the usage is durable, so what a client is told it used
        is never lost. Cancelled (a ``cancel``, the channel ending), it records the partial
        usage as cancelled on the way out and pushes ``error`` ``cancelled``.
        """
        request_id = job.request_id
        started = time.monotonic()
        stream: SessionStream | None = None
        error_name: str | None = None
        payload: dict[str, Any] = {"request_id": request_id, "reason": CANCELLED}
        event_name = "error"
        done: StreamDone | None = None
        tokens = _AnswerFrames(self, reply, request_id, self._loop)
        try:
            async with job.runtime.stream(job.session_id, job.messages, task_type=job.task_type,
                                          options=job.options, request_id=request_id,
                                          user_id=job.user_id) as stream:
                async for event in stream:
                    if isinstance(event, TokenDelta):
                        await tokens.add(event.text)
                    elif isinstance(event, StreamDone):
                        tokens.end()
                        event_name, done = "done", event
                        payload = _done_json(request_id, event, stream.config)
                    elif isinstance(event, StreamError):
                        tokens.end()
                        error_name = type(event.error).__name__
                        payload = _error_json(request_id, event.error)
        except (LLMError, SessionError, UsageBackpressureError) as error:
            error_name = type(error).__name__
            event_name, payload = "error", _error_json(request_id, error)
        except StoreUnavailableError as error:  # the store is down: this answer fails, typed
            error_name = type(error).__name__
            event_name, payload = "error", {"request_id": request_id,
                                            "reason": "store_unavailable", "detail": str(error)}
        except asyncio.CancelledError:
            # Cancelled: leaving the stream handed its usage to the recorder.
            tokens.flush()
            self.push("error", {"request_id": request_id, "reason": CANCELLED})
            _log(job, stream, started, "cancelled", None)
            raise
        if done is not None and stream is not None:  # the usage is durable now
            payload["message_id"] = self._keep_answer(stream.chat.text, request_id, done)
        tokens.flush()
        self.push(event_name, payload)
        _log(job, stream, started, "ok" if event_name == "done" else "error", error_name)


    def _keep_answer(self, text: str, request_id: str, done: StreamDone) -> int:
        """Add the answer to the conversation (and hand it to the store); its id."""
        conversation = self.conversation
        message_id = conversation.add("assistant", text, request_id)
        usage = done.usage
        conversation.store(message_id, "assistant", text, request_id,
                           provider=done.provider, model=done.model,
                           prompt_tokens=usage.prompt_tokens,
                           completion_tokens=usage.completion_tokens,
                           finish_reason=done.finish_reason)
        return message_id


class _AnswerFrames:
    """An answer's ok reply and ``token`` pushes: sent at the end of the event-loop turn they
    were made in — unless the answer ended in that turn: then they go with its terminal frame.

    The terminal frame (``done``, ``error``) waits for the usage to be durable, a few
    milliseconds. An answer that is complete at once (the echo provider, a provider's last
    tokens arriving with the end of its stream) would otherwise cost the client's connection
    writes (a send system call and a wakeup of the client each) a few milliseconds apart.
    Frames of a turn after which the answer goes on are not held, so a streamed answer's reply
    and tokens go out as they come; held frames wait ``HOLD_S`` at most.
    """

    HOLD_S: ClassVar[float] = 0.05
    """The longest the reply and last tokens wait for the terminal frame."""

    __slots__ = ("_channel", "_ended", "_held", "_loop", "_reply", "_request_id", "_sent",
                 "_turn")

    def __init__(self, channel: Channel, reply: ReplyRef | None, request_id: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._channel = channel
        self._reply = reply  # None once sent
        self._request_id = request_id
        self._held: list[str] = []
        self._ended = False
        self._sent: asyncio.Future[None] | None = None
        self._loop = loop  # the running one
        # The reply goes at the end of the answer's first turn, token or not.
        self._turn = True  # an end of turn is due for this answer
        _turn_ends.get(self._loop).add(self)

    async def add(self, text: str) -> None:
        """Hold ``text`` until the turn ends (waiting first while the client falls behind)."""
        sent = self._sent
        if sent is not None and not sent.done():
            await sent  # the socket's mailbox is full: the provider waits for the client
        self._held.append(text)
        if not self._turn:
            self._turn = True
            _turn_ends.get(self._loop).add(self)

    def end(self) -> None:
        """The answer ended: what is held waits for the terminal frame (``HOLD_S`` at most)."""
        if not self._ended:
            self._ended = True
            self._turn = False  # nothing to do at the end of this turn now
            if self._held or self._reply is not None:
                _hold_limits.get(self._loop).add(self)

    def flush(self) -> None:
        """Send what is held now: the reply, then the tokens (before the terminal frame)."""
        self._turn = False
        channel = self._channel
        if self._reply is not None:
            channel.reply(self._reply, {"request_id": self._request_id})
            self._reply = None
        held, self._held = self._held, []
        for text in held:
            self._sent = channel.push("token", {"request_id": self._request_id, "delta": text})

    def turn_ended(self) -> None:
        """The event-loop turn in which frames were made is over: send them, unless the
        answer has ended (or they were sent meanwhile)."""
        if self._turn:
            self._turn = False
            if not self._ended:
                self.flush()


class _HoldLimit:
    """When the held frames of ended answers must go: one timer for all of them, not one per
    answer (each would cost a timer handle in the event loop's heap for every message).

    Every answer holds for the same ``HOLD_S``, so deadlines come in the order answers end.
    """

    __slots__ = ("_held", "_timer")

    def __init__(self) -> None:
        self._held: deque[tuple[float, _AnswerFrames]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, frames: _AnswerFrames) -> None:
        loop = frames._loop
        deadline = loop.time() + frames.HOLD_S
        self._held.append((deadline, frames))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        held, now = self._held, loop.time()
        while held and held[0][0] <= now:
            held.popleft()[1].flush()  # nothing left to send if the answer has finished
        self._timer = loop.call_at(held[0][0], self._expire) if held else None


_hold_limits: LoopLocal[_HoldLimit] = LoopLocal(_HoldLimit)
# The answers with an end of turn due, per event loop (one answer may be there twice: the
# second time finds nothing to do).
_turn_ends: LoopLocal[NextTurn[_AnswerFrames]] = LoopLocal(
    lambda: NextTurn(_AnswerFrames.turn_ended))


@dataclass(slots=True)  # not frozen: made for every message, and only its task reads it
class StreamJob:
    """One answer to stream: where from, for whom."""

    runtime: Application
    session_id: str
    user_id: str
    task_type: str
    options: ConfigRequest | None
    messages: tuple[ChatMessage, ...]
    request_id: str


@dataclass(frozen=True, slots=True)
class _StreamCrashed:
    """An answer's task failed unexpectedly: the channel crashes with ``error``."""

    error: BaseException


# --- helpers ---------------------------------------------------------------------------------


def _log(job: StreamJob, stream: SessionStream | None, started: float, outcome: Outcome,
         error: str | None) -> None:
    if not llm_requests_logged():
        return
    chat = stream.chat if stream is not None and stream.opened else None
    usage = chat.usage if chat is not None else None
    log_llm_request(LLMRequestLog(
        request_id=job.request_id, user_id=job.user_id, session_id=job.session_id,
        endpoint="channel", stream=True, task_type=job.task_type,
        provider=chat.provider if chat is not None else None,
        model=chat.model if chat is not None else None, latency_ms=elapsed_ms(started),
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0, outcome=outcome,
        error=error))


def _parse(model: type[_M], payload: Any) -> _M:
    if not isinstance(payload, dict):
        raise ReplyError("bad_request", "the payload must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        # A loc may hold a client-chosen key: quote a bounded part of it.
        errors = error.errors(include_url=False, include_input=False)
        problems = "; ".join(
            f"{'.'.join(str(part)[:_MAX_LOC] for part in e['loc']) or 'payload'}: {e['msg']}"
            for e in errors[:_MAX_PROBLEMS])
        if len(errors) > _MAX_PROBLEMS:
            problems += f"; and {len(errors) - _MAX_PROBLEMS} more"
        raise ReplyError("bad_request", problems) from None


def _error_json(request_id: str, error: Exception) -> dict[str, Any]:
    return {"request_id": request_id, "reason": _reason(error), "detail": _detail(error)}


def _detail(error: Exception) -> str:
    # A provider's own words stay in the log (beamish.llm logs them, scrubbed).
    return error.public_message if isinstance(error, LLMError) else str(error)


def _reason(error: Exception) -> str:
    if isinstance(error, LLMError):
        return error.code
    if isinstance(error, SessionOwnerError):
        return "forbidden"
    if isinstance(error, UsageBackpressureError):
        return "busy"
    if isinstance(error, StoreUnavailableError):
        return "store_unavailable"
    return "failed"


def _config_json(config: ResolvedConfig) -> dict[str, Any]:
    return {"provider": config.provider, "model": config.model,
            "parameters": config.parameters.model_dump(exclude_defaults=True),
            "sources": {k: str(v) for k, v in config.sources.items()},
            "warnings": list(config.warnings), "task_type": config.task_type,
            "tier": config.tier}


def _done_json(request_id: str, done: StreamDone, config: ResolvedConfig) -> dict[str, Any]:
    return {"request_id": request_id, "usage": {"prompt_tokens": done.usage.prompt_tokens,
                      "completion_tokens": done.usage.completion_tokens},
            "provider": done.provider, "model": done.model, "offline": done.offline,
            "config": dict(config.sources),  # each Layer a str: JSON writes its value
            "warnings": list(config.warnings)}


def _totals_json(totals: Any) -> dict[str, int]:
    return {"requests": totals.requests, "errors": totals.errors,
            "prompt_tokens": totals.prompt_tokens, "completion_tokens": totals.completion_tokens}
