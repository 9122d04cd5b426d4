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
off its schema, the text a template failed on. The log line leaves it out and carries what
the event says of it without content, set where the error was met and never read from the
message: ``error_kind``, the class name of the exception the attempt met (``classify``
records it; ``lease`` for the ends leases decide), and ``error_reason``, a fixed code
(``ErrorReason``) where beamish's own words say why. An error whose kind was not recorded
is logged as ``AttemptError``.
"""

from __future__ import annotations

from typing import Any, Final

from beamish.jobs.models import JobEvent

UNRECORDED_KIND: Final = "AttemptError"
"""The kind of an event's error when its publisher recorded none."""


def error_code(event: JobEvent) -> str | None:
    """``event``'s error without content, as one string: ``kind`` or ``kind: reason``
    (None: no error)."""
    if event.error is None:
        return None
    kind = event.error_kind or UNRECORDED_KIND
    return kind if event.error_reason is None else f"{kind}: {event.error_reason}"


def log_fields(event: JobEvent) -> dict[str, Any]:
    """The fields of ``event``'s log line (see the module docstring), ``event`` first."""
    fields: dict[str, Any] = {"event": f"job_{event.event}", **event.model_dump(
        mode="json", exclude={"event", "error"}, exclude_none=True)}
    if event.error is not None and event.error_kind is None:
        fields["error_kind"] = UNRECORDED_KIND
    return fields


__all__ = ["UNRECORDED_KIND", "error_code", "log_fields"]
