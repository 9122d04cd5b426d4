"""The connection limits' decisions, told the time: caps, first-request deadlines, shortage
reports and the descriptor budget, without a loop or a socket."""

from __future__ import annotations

import pytest

from beamish.server.connections import (
    FD_RESERVE_MIN,
    UNLIMITED_FD_TARGET,
    ConnectionCaps,
    FirstRequest,
    Phase,
    Refusal,
    ShortageLog,
    client_address,
    connection_budget,
    fd_limit_target,
)

HEAD = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"


def test_connections_beyond_the_per_address_cap_are_refused_and_counted() -> None:
    """The cap's worth from one address are admitted, the next refused; others still get in."""
    caps = ConnectionCaps(total=100, per_ip=2)
    assert [caps.admit("10.0.0.1") for _ in range(3)] == [None, None, Refusal.PER_IP]
    assert caps.admit("10.0.0.2") is None
    assert (caps.open, caps.open_from("10.0.0.1")) == (3, 2)
    assert caps.refused == {Refusal.PER_IP: 1, Refusal.TOTAL: 0}


def test_a_released_connection_frees_its_place() -> None:
    """Once one closes, the same address may connect again."""
    caps = ConnectionCaps(total=100, per_ip=1)
    assert caps.admit("10.0.0.1") is None
    caps.release("10.0.0.1")
    assert (caps.open, caps.open_from("10.0.0.1")) == (0, 0)
    assert caps.admit("10.0.0.1") is None


def test_the_total_cap_refuses_every_address() -> None:
    """At ``total`` open, a new address is refused too, as over the total."""
    caps = ConnectionCaps(total=2, per_ip=0)
    assert [caps.admit(f"10.0.0.{i}") for i in range(3)] == [None, None, Refusal.TOTAL]
    assert caps.refused[Refusal.TOTAL] == 1


def test_per_ip_zero_and_addressless_connections_count_only_in_total() -> None:
    """0 turns the per-address cap off; a Unix socket's "" is never capped per address."""
    for caps, address in ((ConnectionCaps(total=10, per_ip=0), "10.0.0.1"),
                          (ConnectionCaps(total=10, per_ip=1), "")):
        assert [caps.admit(address) for _ in range(5)] == [None] * 5


def test_releasing_an_unknown_connection_is_an_error() -> None:
    """Releasing more than was admitted is a bug in the adapter, said so."""
    with pytest.raises(ValueError, match=r"no connection from '10\.0\.0\.1' is open"):
        ConnectionCaps(total=1, per_ip=1).release("10.0.0.1")


def test_client_address_is_the_peer_host_with_mapped_ipv4_unmapped() -> None:
    """IPv4 and IPv6 hosts as they are, ::ffff:a.b.c.d as a.b.c.d, no peer as ""."""
    assert client_address(("127.0.0.2", 5000)) == "127.0.0.2"
    assert client_address(("::1", 5000, 0, 0)) == "::1"
    assert client_address(("::ffff:10.1.2.3", 5000, 0, 0)) == "10.1.2.3"
    assert client_address("") == ""
    assert client_address(None) == ""


def test_a_head_complete_in_time_ends_the_deadline() -> None:
    """A whole request head, even split across chunks at its blank line, is DONE."""
    for cut in range(1, len(HEAD)):
        first = FirstRequest(100.0, header_timeout=10, handshake_timeout=20)
        assert first.deadline == 110.0
        first.received(HEAD[:cut])
        assert first.deadline == 110.0  # still due
        first.received(HEAD[cut:])
        assert first.phase is Phase.DONE
        assert first.deadline is None


def test_a_trickled_head_stays_due_at_the_header_deadline() -> None:
    """Bytes arriving do not move the deadline: a head sent a byte at a time is still due."""
    first = FirstRequest(0.0, header_timeout=10, handshake_timeout=20)
    for byte in HEAD[:-2]:
        first.received(bytes([byte]))
    assert (first.phase, first.deadline, first.sent_partial_head) == (Phase.REQUEST, 10.0, True)


def test_nothing_sent_is_no_partial_head() -> None:
    """A connection that sent nothing is closed without a 408."""
    first = FirstRequest(0.0, header_timeout=10, handshake_timeout=20)
    assert first.sent_partial_head is False


def test_an_upgrade_is_due_at_the_handshake_deadline_until_answered() -> None:
    """After the upgrade head, the handshake deadline applies; the server's answer ends it."""
    first = FirstRequest(100.0, header_timeout=10, handshake_timeout=20)
    first.received(HEAD)
    first.upgraded()
    assert (first.phase, first.deadline) == (Phase.HANDSHAKE, 120.0)
    first.answered()
    assert (first.phase, first.deadline) == (Phase.DONE, None)


def test_an_upgrade_answered_before_the_switch_is_done() -> None:
    """A refusal written while switching protocols already completes the handshake."""
    first = FirstRequest(0.0, header_timeout=10, handshake_timeout=20)
    first.received(HEAD)
    first.answered()
    first.upgraded()
    assert first.phase is Phase.DONE


def test_a_shortage_is_reported_at_once_then_once_per_interval_with_its_count() -> None:
    """1,000 events in one interval: the first reported at once, the other 999 at its end."""
    shortage = ShortageLog(10.0)
    assert shortage.record(0.0) == 1
    assert [shortage.record(i / 100) for i in range(1, 1000)] == [None] * 999
    assert shortage.due == 10.0
    assert shortage.flush(9.99) is None
    assert shortage.flush(10.0) == 999
    assert shortage.due is None
    assert shortage.total == 1000


def test_after_a_quiet_interval_the_next_shortage_is_reported_at_once() -> None:
    """Once an interval has passed since the last report, the next event is reported."""
    shortage = ShortageLog(10.0)
    assert shortage.record(0.0) == 1
    assert shortage.record(5.0) is None
    assert shortage.record(10.0) == 2
    assert shortage.record(25.0) == 1
    assert shortage.flush(100.0) is None


def test_a_shortage_interval_must_be_positive() -> None:
    """An interval of 0 would report every event: refused."""
    with pytest.raises(ValueError, match="interval must be > 0"):
        ShortageLog(0)


def test_the_soft_fd_limit_target_is_the_hard_limit_never_lower() -> None:
    """The hard limit; a bounded stand-in for an unlimited one; never below the soft."""
    assert fd_limit_target(1024, 524288, unlimited=-1) == 524288
    assert fd_limit_target(1024, -1, unlimited=-1) == UNLIMITED_FD_TARGET
    assert fd_limit_target(4096, 4096, unlimited=-1) == 4096
    assert fd_limit_target(-1, -1, unlimited=-1) == -1


def test_the_connection_budget_leaves_descriptors_to_the_rest_of_the_process() -> None:
    """At most an eighth (at least FD_RESERVE_MIN) of the limit goes unused by connections."""
    assert connection_budget(10_000, None) == 10_000
    assert connection_budget(10_000, 1024) == 1024 - 128
    assert connection_budget(10_000, 256) == 256 - FD_RESERVE_MIN
    assert connection_budget(100, 1024) == 100
    assert connection_budget(10_000, 16) == 1
