"""The conversation join's params over any JSON-ish input (hypothesis): valid or bad_request."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from beamish.channels.channel import ReplyError
from beamish.channels.errors import FrameError
from beamish.channels.frames import decode_text, encode_reply
from beamish.chat.conversation import MAX_HISTORY_ID, JoinParams, _parse

PROPERTY = settings(database=None, deadline=None, max_examples=150)
ANY_CHAR = st.characters(codec="utf-8")  # what a decoded frame can hold: no lone surrogates
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(ANY_CHAR, max_size=300))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=10,
)
PARAMS = st.dictionaries(
    st.sampled_from(["session_id", "last_seen_id", "other"]) | st.text(ANY_CHAR, max_size=100),
    JSONISH | st.integers(-(2**70), 2**70) | st.sampled_from([1e999, -1e999, 1.0, "3"]),
    max_size=4,
)


@PROPERTY
@given(PARAMS)
def test_join_params_are_valid_or_a_bad_request_reply_that_can_be_sent(
        params: dict[str, Any]) -> None:
    """Any params object gives JoinParams within bounds, or a bad_request that encodes."""
    refused: ReplyError | None = None
    try:
        joining = _parse(JoinParams, params)
    except ReplyError as error:
        refused = error
    if refused is not None:
        assert refused.response["reason"] == "bad_request"
        frame = encode_reply("1", "1", "conversation:c1", "error", refused.response)
        assert isinstance(frame, str)
        frame.encode()
        assert len(refused.response["detail"]) < 2_000
        return
    assert isinstance(joining.last_seen_id, int)
    assert 0 <= joining.last_seen_id <= MAX_HISTORY_ID
    assert joining.session_id is None or 1 <= len(joining.session_id) <= 128


@PROPERTY
@given(st.text(max_size=40))
def test_join_params_from_a_raw_frame_never_raise_anything_else(number: str) -> None:
    """A params object read from a client frame (numbers as written) parses or is bad_request."""
    text = f'["1","1","conversation:c1","phx_join",{{"last_seen_id":{json.dumps(number)}}}]'
    for candidate in (text, text.replace(json.dumps(number), number or "0")):
        try:
            frame = decode_text(candidate)
        except FrameError:  # the socket answers it
            continue
        assert isinstance(frame.payload, dict)
        with contextlib.suppress(ReplyError):
            _parse(JoinParams, frame.payload)
