"""Idle-socket bookkeeping on a passed-in clock, and the close codes."""

from __future__ import annotations

import pytest

from beamish.channels.close_codes import MAX_CLOSE_REASON_BYTES, CloseCode, truncate_reason
from beamish.channels.errors import InvalidOptionError
from beamish.channels.idle import DEFAULT_IDLE_TIMEOUT, Idleness


def test_default_idle_timeout_is_60_seconds() -> None:
    """As Phoenix, a socket is idle after 60 s without a frame."""
    idleness = Idleness(1000.0)
    assert DEFAULT_IDLE_TIMEOUT == 60.0
    assert idleness.deadline == 1060.0


def test_idle_exactly_at_the_deadline_and_not_before() -> None:
    """is_idle is False just before last_frame_at + timeout and True from it on."""
    idleness = Idleness(0.0)
    assert not idleness.is_idle(59.999)
    assert idleness.is_idle(60.0)


def test_a_frame_moves_the_deadline() -> None:
    """frame_received resets the countdown from the frame's time."""
    idleness = Idleness(0.0)
    idleness.frame_received(45.0)
    assert (idleness.last_frame_at, idleness.deadline) == (45.0, 105.0)
    assert not idleness.is_idle(100.0)
    assert idleness.is_idle(105.0)


def test_an_earlier_clock_value_does_not_move_the_deadline_back() -> None:
    """A frame stamped before the last one leaves last_frame_at where it was."""
    idleness = Idleness(10.0)
    idleness.frame_received(5.0)
    assert idleness.last_frame_at == 10.0


def test_remaining_counts_down_to_zero() -> None:
    """remaining is the time left before idle, never negative."""
    idleness = Idleness(0.0, timeout=30)
    assert idleness.remaining(12.5) == 17.5
    assert idleness.remaining(99.0) == 0.0


def test_reason_names_the_timeout() -> None:
    """The idle close reason says how long the socket was silent."""
    assert Idleness(0.0).reason == "idle timeout: no frame for 60 s"
    assert Idleness(0.0, timeout=1.5).reason == "idle timeout: no frame for 1.5 s"


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), float("nan"), True, "60"])
def test_bad_timeouts_are_refused(timeout: object) -> None:
    """Zero, negative, infinite, NaN and non-numeric timeouts raise InvalidOptionError."""
    with pytest.raises(InvalidOptionError, match="invalid timeout:"):
        Idleness(0.0, timeout=timeout)  # type: ignore[arg-type]


def test_close_code_values() -> None:
    """The close codes are the RFC 6455 values."""
    assert [int(code) for code in CloseCode] == [1000, 1001, 1008, 1009, 1011, 1012]


def test_only_a_normal_close_stops_the_js_client_reconnecting() -> None:
    """The phoenix JS client reconnects after every close code except 1000."""
    assert [code for code in CloseCode if not code.client_reconnects] == [CloseCode.NORMAL]


def test_truncate_reason_keeps_short_reasons_and_cuts_long_ones_on_a_character() -> None:
    """Reasons within 123 bytes are kept; longer ones are cut without splitting UTF-8."""
    assert truncate_reason("idle") == "idle"
    assert truncate_reason("x" * 200) == "x" * MAX_CLOSE_REASON_BYTES
    assert truncate_reason("€" * 50) == "€" * 41  # 3 bytes each: 41 * 3 = 123
    assert truncate_reason("a" + "€" * 50) == "a" + "€" * 40
