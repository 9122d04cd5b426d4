"""new_request_id: UUIDv7 hex ids, in time order, never repeated, not even across a fork."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from beamish.store.models import _ENTROPY, new_request_id


def test_ids_are_32_hex_digits_and_distinct() -> None:
    """Many more ids than one read of randomness holds: each is new, each 32 hex digits."""
    count = 3 * _ENTROPY.SIZE // 16 + 5
    ids = [new_request_id() for _ in range(count)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == count


def test_ids_are_uuid7s_of_the_time_they_were_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each is a UUIDv7 (RFC 9562) whose first 48 bits are its millisecond; ids made in
    different milliseconds sort in the order they were made."""
    clock = iter([1_700_000_000_123_456_789, 1_700_000_000_124_000_000,
                  1_700_000_001_000_000_000])
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    made = [new_request_id() for _ in range(3)]
    monkeypatch.undo()
    assert [int(request_id[:12], 16) for request_id in made] == [
        1_700_000_000_123, 1_700_000_000_124, 1_700_000_001_000]
    for request_id in made:
        parsed = uuid.UUID(request_id)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert sorted(made) == made


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    """The child forgets the randomness it inherited, so its ids differ from the parent's."""
    new_request_id()  # the parent holds unread randomness when it forks
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report three ids and leave at once
        try:
            os.write(write, "".join(new_request_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(new_request_id() for _ in range(3))
    assert len(child) == len(parent) == 96
    assert child != parent
