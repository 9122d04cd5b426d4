"""Session-scoped LLM calls made over HTTP: whole answers, and answers streamed as SSE.

Both go through the runtime (``Application.complete`` / ``Application.stream``), so the usage of
every call is recorded exactly once, under a request id the server makes (a client cannot
pick one, or it could replay an id to have its calls go uncounted). Each call ends with one
structured log line (``beamish.request_log``).

**Streams.** ``StreamingCall`` is the response of a streamed call, and does the whole call
inside its own ASGI ``__call__``, in one ``async with rt.stream(...)``:

1. resolve the configuration and read the answer's first event *before* answering, so a
   call that cannot start (unknown session, every model failing) gets a proper HTTP error
   with the status ``describe`` gives, not a 200 stream that fails at once;
2. answer 200 ``text/event-stream`` and send the wire's frames for each event — the
   terminal event's (``done``, ``error``, ``[DONE]``) only once the usage is recorded, so a
   client that has seen the end can count on it. A task reads the events ahead of the
   sending (``_read_ahead``, at most ``RELAY_BACKLOG``), so the frames of events that arrive
   together go out in one write; those that arrive with the terminal event go out with it;
3. when the client disconnects, stop: the stream is closed and its usage so far recorded
   as ``cancelled``.

The call runs in a task of an ``asyncio.TaskGroup`` beside one that waits for the client's
disconnect; whichever ends first cancels the other. asyncio's cancellation is delivered
once, so the stream's own cleanup (closing the provider connection, recording the usage)
runs to its end after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from beamish.application import Application, SessionCompletion, SessionStream
from beamish.auth import Principal
from beamish.llm.errors import FallbacksExhaustedError
from beamish.llm.hierarchy import ConfigRequest
from beamish.llm.providers.base import ChatMessage
from beamish.llm.providers.stream import ChatStream, StreamDone, StreamError, StreamEvent
from beamish.request_log import Endpoint, LLMRequestLog, Outcome, elapsed_ms, log_llm_request
from beamish.server.api.errors import describe, error_response
from beamish.server.api.sse import SSE_HEADERS, StreamInfo, StreamWire
from beamish.sessions.errors import SessionError

log = logging.getLogger("beamish.server.api")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """One session-scoped call as the endpoint understood it.

    Attributes:
        session_id: the session (open, and the caller's unless the caller is an admin).
        messages: the conversation, last message last.
        task_type: the task type resolution uses.
        options: the request's explicit provider, model and parameters, if any.
        caller: who asked.
        endpoint: which API it came through (for the log).
        user_id: whose session it is (session ids are per user); None: the caller's, or for
            an admin the one user's who has it open.
    """

    session_id: str
    messages: tuple[ChatMessage, ...]
    task_type: str
    options: ConfigRequest | None
    caller: Principal
    endpoint: Endpoint
    user_id: str | None = None

    @property
    def owner_check(self) -> str | None:
        """The user the session must belong to (None: any, for an admin)."""
        if self.user_id is not None:
            return self.user_id
        return None if self.caller.is_admin else self.caller.user_id


async def complete(rt: Application, plan: CallPlan, request_id: str) -> SessionCompletion:
    """The whole answer; usage recorded, one log line written, whatever happens."""
    started = time.monotonic()
    owner = _owner(rt, plan)
    try:
        result = await rt.complete(plan.session_id, list(plan.messages),
                                   task_type=plan.task_type, options=plan.options,
                                   request_id=request_id, user_id=plan.owner_check)
    except asyncio.CancelledError:
        _log_failure(plan, request_id, owner, started, "cancelled", None)
        raise
    except Exception as error:
        _log_failure(plan, request_id, owner, started, "error", error)
        raise
    completion = result.completion
    log_llm_request(LLMRequestLog(
        request_id=request_id, user_id=owner, session_id=plan.session_id,
        endpoint=plan.endpoint, stream=False, task_type=plan.task_type,
        provider=completion.provider, model=completion.model, latency_ms=elapsed_ms(started),
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens, outcome="ok"))
    return result


def _owner(rt: Application, plan: CallPlan) -> str:
    try:
        return rt.sessions.owner(plan.session_id, user_id=plan.owner_check)
    except SessionError:  # the call will fail the same way; the log names the caller
        return plan.caller.user_id


def _log_failure(plan: CallPlan, request_id: str, owner: str, started: float,
                 outcome: Outcome, error: BaseException | None) -> None:
    provider = model = None
    if isinstance(error, FallbacksExhaustedError) and error.attempts:
        provider, model = error.attempts[-1].provider, error.attempts[-1].model
    log_llm_request(LLMRequestLog(
        request_id=request_id, user_id=owner, session_id=plan.session_id,
        endpoint=plan.endpoint, stream=False, task_type=plan.task_type, provider=provider,
        model=model, latency_ms=elapsed_ms(started), prompt_tokens=0, completion_tokens=0,
        outcome=outcome, error=None if error is None else type(error).__name__))


class StreamingCall(Response):
    """The response of a streamed call: the whole call runs when it is sent (module doc)."""

    media_type = "text/event-stream"

    def __init__(self, rt: Application, plan: CallPlan, wire: StreamWire, request_id: str,
                 headers: dict[str, str] | None = None) -> None:
        """Stream ``plan``'s answer framed by ``wire``, under ``request_id``."""
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self._rt = rt
        self._plan = plan
        self._wire = wire
        self._request_id = request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(self._serve(scope, receive, send))
            watching = group.create_task(_until_disconnect(receive))
            await asyncio.wait((serving, watching), return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()
            watching.cancel()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan, started = self._plan, time.monotonic()
        owner = _owner(self._rt, plan)
        stream = self._rt.stream(plan.session_id, list(plan.messages),
                                 task_type=plan.task_type, options=plan.options,
                                 request_id=self._request_id, user_id=plan.owner_check)
        answering = False
        failure: BaseException | None = None
        try:
            async with stream:
                events = aiter(stream)
                first = await anext(events)
                answering = True
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                last = await self._relay(send, _info(stream, plan), first, events)
            # Only now, with the usage durable, does the client see the answer end.
            await _body(send, last)
            await _end(send)
        except Exception as error:
            failure = error
            await self._fail(scope, receive, send, error, answering)
        except asyncio.CancelledError as error:
            failure = error
            raise
        finally:
            self._log(stream, owner, started, failure)

    async def _relay(self, send: Send, info: StreamInfo, first: StreamEvent,
                     events: AsyncIterator[StreamEvent]) -> bytes:
        """Send the frames of every event but the terminal one; return what is left to send
        with that one's (see ``_read_ahead``: frames ready together are sent together)."""
        frames = [self._wire.opening(info)]
        ready: asyncio.Queue[StreamEvent | BaseException] = asyncio.Queue(RELAY_BACKLOG)
        reading = asyncio.create_task(_read_ahead(events, ready))
        try:
            event: StreamEvent = first
            while not isinstance(event, StreamDone | StreamError):
                frames.append(self._wire.event(info, event))
                if ready.empty():  # nothing else has arrived: send what has
                    await _body(send, b"".join(frames))
                    frames.clear()
                    item = await ready.get()
                else:
                    item = ready.get_nowait()
                if isinstance(item, BaseException):
                    raise item
                event = item
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        frames.append(self._wire.event(info, event))
        return b"".join(frames)

    async def _fail(self, scope: Scope, receive: Receive, send: Send, error: Exception,
                    answering: bool) -> None:
        info = describe(error)
        if info.type == "internal_error":
            log.error("streamed call %s failed", self._request_id, exc_info=error)
        try:
            if not answering:
                await error_response(info, openai=self._plan.endpoint == "openai")(
                    scope, receive, send)
                return
            await _body(send, self._wire.failure(self._request_id, info))
            await _end(send)
        except OSError:
            pass  # the client is gone too (ASGI 2.4 servers raise it from send)

    def _log(self, stream: SessionStream, owner: str, started: float,
             failure: BaseException | None) -> None:
        plan = self._plan
        try:
            chat = stream.chat
        except RuntimeError:  # never opened: resolution or the session failed
            chat = None
        outcome = _outcome(chat, failure)
        error = None
        if outcome == "error":
            error = "StreamBrokenError" if failure is None else type(failure).__name__
        usage = None if chat is None else chat.usage
        log_llm_request(LLMRequestLog(
            request_id=self._request_id, user_id=owner, session_id=plan.session_id,
            endpoint=plan.endpoint, stream=True, task_type=plan.task_type,
            provider=None if chat is None else (chat.provider or stream.config.provider),
            model=None if chat is None else (chat.model or stream.config.model),
            latency_ms=elapsed_ms(started),
            prompt_tokens=0 if usage is None else usage.prompt_tokens,
            completion_tokens=0 if usage is None else usage.completion_tokens,
            outcome=outcome, error=error))


def _outcome(chat: ChatStream | None, failure: BaseException | None) -> Outcome:
    # A client that went away shows as a cancelled task, or (ASGI 2.4 servers) as an
    # OSError from send.
    if isinstance(failure, asyncio.CancelledError | OSError):
        return "cancelled"
    if chat is None or failure is not None or chat.status == "error":
        return "error"
    return "ok" if chat.status == "ok" else "cancelled"


def _info(stream: SessionStream, plan: CallPlan) -> StreamInfo:
    chat = stream.chat
    return StreamInfo(request_id=stream.request_id, session_id=plan.session_id,
                      config=stream.config, provider=chat.provider or stream.config.provider,
                      model=chat.model or stream.config.model)


RELAY_BACKLOG = 64
"""Events a stream reads ahead of a client that is slower than the provider; then the
reading waits, so a slow client holds the provider back rather than filling memory."""


async def _read_ahead(events: AsyncIterator[StreamEvent],
                      ready: asyncio.Queue[StreamEvent | BaseException]) -> None:
    """Read ``events`` into ``ready`` until the terminal one, or the error that ended them.

    The relay sends, each time it wakes, the frames of every event that is ready, as one
    body: a provider's answer that arrives in one network read (a fast or local model's
    whole answer, often) goes out in one write instead of one per token, while an event
    that arrives alone still goes out as soon as it is read.
    """
    try:
        async for event in events:
            await ready.put(event)
            if isinstance(event, StreamDone | StreamError):
                return
        await ready.put(StopAsyncIteration())  # ended without its terminal event
    except Exception as error:  # handed to the relay, which raises it in the call's task
        await ready.put(error)


async def _body(send: Send, data: bytes) -> None:
    if data:
        await send({"type": "http.response.body", "body": data, "more_body": True})


async def _end(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


__all__ = ["CallPlan", "StreamingCall", "complete"]
