"""Job events across processes, without I/O: NOTIFY payloads under the size limit, the
sender's own events left out, no error message crossing, the outbox's one wake-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from beamish.jobs import JobEvent
from beamish.jobs.relay import MAX_PAYLOAD_BYTES, MAX_PENDING, Outbox, decode, encode


def _event(job_id: int, **fields: object) -> JobEvent:
    values: dict[str, object] = {"event": "started", "job_id": job_id,
                                 "output_id": f"out-{job_id}", "user_id": "ada",
                                 "queue": "default", "status": "processing", "attempt": 1,
                                 "template": "digest", **fields}
    return JobEvent.model_validate(values)


def test_events_cross_to_other_processes_as_they_were() -> None:
    """Another process decodes the events as sent, in order."""
    events = [_event(1), _event(2, event="retried", status="pending", latency_ms=12,
                                retry_at=datetime(2030, 1, 1, tzinfo=UTC))]
    [payload] = encode("node-a", events)
    assert decode(payload, node="node-b") == events


def test_the_sender_leaves_its_own_events_out() -> None:
    """A process's listener gets its own payloads too; they were delivered already."""
    [payload] = encode("node-a", [_event(1)])
    assert decode(payload, node="node-a") == []


def test_a_batch_is_split_into_payloads_under_notify_s_limit() -> None:
    """Many events (of the longest ids) take several payloads, each under the limit, and
    arrive all and in order."""
    long = "x" * 255
    events = [_event(n, user_id=long, template=long, output_id=long) for n in range(200)]
    payloads = encode("node-a", events)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES < 8000 for p in payloads)
    assert [e for p in payloads for e in decode(p, node="node-b")] == events


def test_no_error_message_crosses_only_its_kind() -> None:
    """An error message can quote what the user sent: its kind and reason cross instead,
    as fields and as the error's text; a message of no recorded kind crosses as
    ``AttemptError``, whatever it looks like."""
    event = _event(1, event="failed", status="failed", error_kind="FormatError",
                   error_reason="answer_off_schema",
                   error='the answer does not fit the schema: "VARMARKER" is not "integer"')
    unkinded = _event(2, event="failed", status="failed",
                      error="VARMARKERError: text shaped like a class name")
    [payload] = encode("node-a", [event, unkinded])
    assert "VARMARKER" not in payload
    [crossed, crossed_unkinded] = decode(payload, node="node-b")
    assert crossed == event.model_copy(update={"error": "FormatError: answer_off_schema"})
    assert (crossed_unkinded.error, crossed_unkinded.error_kind) == ("AttemptError", None)


def test_a_kind_or_reason_that_is_not_a_fixed_word_does_not_cross(
        caplog: pytest.LogCaptureFixture) -> None:
    """An event notified with a kind that is not a class-name word, or a reason not among
    the fixed codes, is not an event: it is left out (so text cannot pass as either)."""
    [payload] = encode("node-a", [_event(1, event="failed", status="failed",
                                         error="x", error_kind="FormatError")])
    for forged in ('"error_kind":"VARMARKER said: hi"', '"error_kind":"FormatError",'
                   '"error_reason":"VARMARKER"'):
        assert decode(payload.replace('"error_kind":"FormatError"', forged),
                      node="node-b") == []
    assert caplog.text.count("is not one") == 2


def test_what_is_not_an_event_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    """A line of a payload that is not an event is skipped with a warning; the rest
    arrive; an empty payload has none."""
    [payload] = encode("node-a", [_event(1)])
    assert decode(payload + "\n{not json", node="node-b") == [_event(1)]
    assert "is not one" in caplog.text
    assert decode("node-a", node="node-b") == []


def test_the_outbox_wakes_its_sender_once_a_batch() -> None:
    """The first event after a take wakes the sender; the rest join that batch; past
    MAX_PENDING waiting, events are dropped and counted."""
    wakes: list[None] = []
    outbox = Outbox(lambda: wakes.append(None))
    outbox.put(_event(1))
    outbox.put(_event(2))
    assert len(wakes) == 1
    assert [e.job_id for e in outbox.take()] == [1, 2]
    assert outbox.take() == []
    outbox.put(_event(3))
    assert len(wakes) == 2
    for n in range(MAX_PENDING):
        outbox.put(_event(n))
    assert (len(outbox.take()), outbox.dropped) == (MAX_PENDING, 1)


def test_an_event_without_a_job_id_crosses_too() -> None:
    """A field left out as None on the way (``job_id`` among them) is None again on
    arrival: the event is not dropped as malformed."""
    event = JobEvent(event="feedback", output_id="out-1", user_id="ada", status="completed")
    [payload] = encode("node-a", [event])
    assert decode(payload, node="node-b") == [event]
    assert event.job_id is None


def test_events_dropped_are_logged_once_a_send_by_count(
        caplog: pytest.LogCaptureFixture) -> None:
    """The take (one a send) after events were dropped warns once with how many since the
    last take; a take after none were dropped says nothing."""
    outbox = Outbox(lambda: None)
    for n in range(MAX_PENDING + 3):
        outbox.put(_event(n))
    assert caplog.records == []
    assert len(outbox.take()) == MAX_PENDING
    [warning] = caplog.records
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith("3 job events were not sent")
    outbox.put(_event(1))
    outbox.take()
    assert len(caplog.records) == 1
    for n in range(MAX_PENDING + 1):
        outbox.put(_event(n))
    outbox.take()
    assert [r.getMessage()[:2] for r in caplog.records] == ["3 ", "1 "]
    assert outbox.dropped == 4
