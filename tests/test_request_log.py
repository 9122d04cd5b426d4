"""RequestLineWriter: the request log's lines as beamish serve's logging would write them,
a turn of the event loop's lines in one write."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from beamish.request_log import (
    LOGGER_NAME,
    LLMRequestLog,
    RequestLineWriter,
    log_llm_request,
    write_request_lines,
)
from beamish.server.serve import SERVING_LOG_FORMAT

pytestmark = pytest.mark.anyio

ENTRY = LLMRequestLog(request_id="r1", user_id="ada", session_id="s1", endpoint="channel",
                      stream=True, task_type="chat", provider="echo", model="echo-1",
                      latency_ms=3, prompt_tokens=4, completion_tokens=6, outcome="ok")


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[Writes]:
    """The request lines go to a stream for the test; records again after it."""
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    logger.setLevel(logging.INFO)
    out = Writes()
    write_request_lines(out)
    try:
        yield out
    finally:
        write_request_lines(None)
        logger.setLevel(level)


def test_a_line_is_what_the_serving_format_makes_of_the_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Same text as logging.Formatter(SERVING_LOG_FORMAT) gives a record made at that time."""
    made_at_ns = 1_700_000_000_987_654_000
    made_at = made_at_ns / 1e9
    # A record reads time.time() before Python 3.13 and time.time_ns() from it on.
    monkeypatch.setattr(time, "time", lambda: made_at)
    monkeypatch.setattr(time, "time_ns", lambda: made_at_ns)
    out = Writes()
    RequestLineWriter(out).write(ENTRY.to_json())  # no event loop here: written at once
    record = logging.LogRecord(LOGGER_NAME, logging.INFO, "", 0, ENTRY.to_json(), None, None)
    monkeypatch.undo()
    assert record.created == made_at
    line = out.getvalue()
    assert line == logging.Formatter(SERVING_LOG_FORMAT).format(record) + "\n"
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,987 INFO ", line)
    assert json.loads(line.split(" ", 4)[4]) == {"event": "llm_request", **ENTRY.fields()}


async def test_a_turns_lines_go_out_in_one_write_at_the_next_turn(stream: Writes) -> None:
    for _ in range(3):
        log_llm_request(ENTRY)
    assert stream.writes == []  # not yet: the rest of this turn may add lines
    await asyncio.sleep(0)
    assert len(stream.writes) == 1
    assert stream.getvalue().count("\n") == 3
    log_llm_request(ENTRY)
    await asyncio.sleep(0)
    assert len(stream.writes) == 2


def test_lines_left_by_a_loop_that_ended_go_with_the_next(stream: Writes) -> None:
    """A loop closed before its turn came: its line waits, and the next line's loop takes it."""
    async def log_one() -> None:
        log_llm_request(ENTRY)

    loop = asyncio.new_event_loop()

    def log_then_stop() -> None:
        log_llm_request(ENTRY)
        loop.stop()  # before the turn the flush was scheduled for

    loop.call_soon(log_then_stop)
    loop.run_forever()
    loop.close()
    assert stream.writes == []
    asyncio.run(log_one())
    assert len(stream.writes) == 1
    assert stream.getvalue().count("\n") == 2


def test_the_loggers_level_still_decides(stream: Writes) -> None:
    logging.getLogger(LOGGER_NAME).setLevel(logging.WARNING)
    log_llm_request(ENTRY)
    assert stream.getvalue() == ""


async def test_going_back_to_records_writes_what_waits(stream: Writes,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """What waits is written when the writer is replaced; records follow, with the fields."""
    log_llm_request(ENTRY)
    write_request_lines(None)
    assert stream.getvalue().count("\n") == 1
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        log_llm_request(ENTRY)
    [record] = caplog.records
    assert record.llm_request == ENTRY.fields()  # type: ignore[attr-defined]
    assert json.loads(record.getMessage()) == {"event": "llm_request", **ENTRY.fields()}


def test_a_stream_that_fails_is_reported_and_serving_goes_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    closed = io.StringIO()
    closed.close()
    writer = RequestLineWriter(closed)
    writer.write(ENTRY.to_json())
    writer.write(ENTRY.to_json())
    assert "ValueError" in capsys.readouterr().err
