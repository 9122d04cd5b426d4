"""The job log line: one per job event, its fields only, never content — without I/O.

``JobsContext.publish`` writes each event on the ``beamish.jobs`` logger as one INFO record
whose message is one JSON object (the text log format shows it as it is)::

    {"event": "job_failed", "job_id": 7, "output_id": "0f3c…", "user_id": "ada",
     "queue": "default", "status": "failed", "attempt": 3, "template": "digest",
     "template_version": 2, "model": "model-a", "latency_ms": 41,
     "error_kind": "FormatError", "error_reason": "answer_off_schema"}

The same fields are on the record as ``record.job_event`` (a dict), so ``--log-format json``
writes them as fields of the line (``beamish.server.logging_json``), with ``message`` the
event's name, rather than as a string inside ``message``. Fields an event does not have are
left out.

**No content.** An event's ``error`` is the message its user sees, and it can quote what
the user sent: a variable that does not fit the template's schema, the part of a JSON answer
off its schema, the text a template failed on. The log line carries instead the error's
kind (an exception class name, or ``lease`` for the ends leases decide) and, where the
message is one of the known shapes, a fixed reason (``ERROR_REASONS``). A message of no
known shape is logged as ``AttemptError``: the kind is only ever a fixed word or a Python
exception class name, never text that came from a user or a provider.
"""

from __future__ import annotations

import re
from typing import Any, Final

from beamish.jobs.models import JobEvent
from beamish.store._jobs import LOST_LAST_ATTEMPT, RELEASED

ERROR_REASONS: Final[tuple[tuple[str, str, str], ...]] = (
    # (what the message starts with, kind, reason)
    ("the answer is not JSON: ", "FormatError", "answer_not_json"),
    ("the answer does not fit the schema: ", "FormatError", "answer_off_schema"),
    ("template jobs need the application's templates", "PermanentAttemptError",
     "no_templates"),
    (LOST_LAST_ATTEMPT, "lease", "last_attempt_lost"),
    (RELEASED, "lease", "released_at_shutdown"),
)
"""The errors an attempt or a lease gives with a message of its own words."""

_TEMPLATE_FAILED: Final = re.compile(r"template '.*' did not render: ", re.DOTALL)
_CLASS_NAMED: Final = re.compile(r"([A-Z][A-Za-z0-9_]{0,80}(?:Error|Exception)): ")
"""An error the attempt did not expect is described as ``<its class name>: <message>``."""


def error_kind(error: str | None) -> tuple[str, str | None] | None:
    """The content-free ``(kind, reason)`` of an event's ``error`` message (None: no
    error); ``reason`` is None where the kind says it all."""
    if error is None:
        return None
    for start, kind, reason in ERROR_REASONS:
        if error.startswith(start):
            return kind, reason
    if _TEMPLATE_FAILED.match(error):
        return "PermanentAttemptError", "template_did_not_render"
    named = _CLASS_NAMED.match(error)
    if named:
        return named.group(1), None
    return "AttemptError", None


def error_code(error: str | None) -> str | None:
    """``error_kind`` as one string, ``kind`` or ``kind: reason`` (None: no error)."""
    found = error_kind(error)
    if found is None:
        return None
    kind, reason = found
    return kind if reason is None else f"{kind}: {reason}"


def log_fields(event: JobEvent) -> dict[str, Any]:
    """The fields of ``event``'s log line (see the module docstring), ``event`` first."""
    fields: dict[str, Any] = {"event": f"job_{event.event}", **event.model_dump(
        mode="json", exclude={"event", "error"}, exclude_none=True)}
    found = error_kind(event.error)
    if found is not None:
        fields["error_kind"] = found[0]
        if found[1] is not None:
            fields["error_reason"] = found[1]
    return fields


__all__ = ["ERROR_REASONS", "error_code", "error_kind", "log_fields"]
