"""The user channel: ``user:<id>`` — a user's job progress, live, and a way to enqueue.

Only the user themself may join ``user:<their id>`` (anyone else, admins included, is
refused with ``{"reason": "unauthorized"}``); the reply is ``{"user_id"}``. While joined,
the channel pushes ``job`` for each state change of the user's jobs — those this server
process runs, and on PostgreSQL those other processes sharing the queue run (their pushes
carry the error's kind, not its message) — ``{event, job_id, output_id, status, state,
attempt, queue, template, template_version, model, latency_ms, error, retry_at}`` (absent
when unknown), never prompt content — through the server's one ``JobFeed`` (the socket
assign ``"job_feed"``).

Client events:

* ``enqueue`` — the body of ``POST /api/v1/llm_jobs`` (``beamish.jobs.JobSubmission``,
  without ``user_id``: the job is the joined user's) → ok ``{job_id, output_id, status,
  state, created, estimated_completion}``. Errors are ``{reason, detail}``: ``bad_request``
  (the payload or the job is not valid), ``missing_prompt`` (neither template nor prompt,
  and the task type's configuration names no template), ``invalid_variables`` (the
  template's variables,
  each named), ``template_not_found``, ``template_refused`` (the sandbox), ``job_limit``
  (``[jobs] max_unfinished_per_user``), ``unavailable`` (the jobs or the database).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from beamish.application import Application
from beamish.channels.channel import Channel, JoinRefused, ReplyError, SocketInfo
from beamish.chat.job_feed import JobFeed, JobPush, TooManyChannelsError
from beamish.jobs import (
    InvalidJobError,
    JobLimitError,
    JobsNotRunningError,
    JobSubmission,
    MissingPromptError,
)
from beamish.runtime import ExitReason
from beamish.store import StoreError
from beamish.templates import (
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateVariablesError,
)

TOPIC_PREFIX = "user:"
MAX_PROBLEMS = 8


class UserChannel(Channel):
    """``user:<id>``: job events of the user, and ``enqueue`` (see the module docs)."""

    _runtime: Application
    _stop_following: Callable[[], None] | None = None

    def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> dict[str, Any]:
        """Follow the socket's own user's jobs; any other user's topic is refused."""
        user_id = topic.removeprefix(TOPIC_PREFIX)
        if user_id != socket.user_id:
            raise JoinRefused("unauthorized", detail="a socket may join only its own user's "
                              f"topic, {TOPIC_PREFIX}{socket.user_id}")
        self._runtime = socket.assigns["runtime"]
        feed: JobFeed = socket.assigns["job_feed"]
        try:
            self._stop_following = feed.follow(user_id, self.ref)
        except TooManyChannelsError as error:
            raise JoinRefused("too_many_channels", detail=str(error)) from None
        except JobsNotRunningError as error:
            raise JoinRefused("unavailable", detail=str(error)) from None
        return {"user_id": user_id}

    async def handle_in(self, event: str, payload: Any) -> Any:
        """``enqueue``; any other event is an ``unknown event`` error."""
        if event != "enqueue":
            return super().handle_in(event, payload)
        submission = _submission(payload)
        try:
            handle = await submission.enqueue(self._runtime.jobs, self.socket.user_id)
        except TemplateVariablesError as error:
            raise ReplyError("invalid_variables", str(error),
                             problems=list(error.problems[:MAX_PROBLEMS])) from None
        except TemplateNotFoundError as error:
            raise ReplyError("template_not_found", str(error)) from None
        except TemplateRenderError as error:
            raise ReplyError("template_refused", str(error), code=error.problem) from None
        except MissingPromptError as error:
            raise ReplyError("missing_prompt", str(error)) from None
        except JobLimitError as error:
            raise ReplyError("job_limit", str(error)) from None
        except (JobsNotRunningError, StoreError) as error:
            raise ReplyError("unavailable", str(error)) from None
        except (InvalidJobError, ValueError) as error:  # after the template errors: some are
            raise ReplyError("bad_request", str(error)) from None  # ValueErrors too
        return handle.model_dump(mode="json")

    def handle_info(self, message: Any) -> Any:
        """Push a job event of the user (``JobPush``) to the client."""
        if isinstance(message, JobPush):
            self.push("job", message.payload)
            return None
        return super().handle_info(message)

    def terminate(self, reason: ExitReason) -> None:
        """Stop following the user's jobs."""
        if self._stop_following is not None:
            self._stop_following()
            self._stop_following = None


def _submission(payload: Any) -> JobSubmission:
    if not isinstance(payload, dict):
        raise ReplyError("bad_request", "the payload must be a JSON object")
    if "user_id" in payload:
        raise ReplyError("bad_request", "user_id: a job enqueued on user:<id> is that "
                         "user's; leave it out")
    try:
        return JobSubmission.model_validate(payload)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        problems = "; ".join(f"{'.'.join(str(p)[:64] for p in e['loc']) or 'payload'}: "
                             f"{e['msg']}" for e in errors[:MAX_PROBLEMS])
        raise ReplyError("bad_request", problems) from None


__all__ = ["TOPIC_PREFIX", "UserChannel"]
