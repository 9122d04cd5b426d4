"""Sans-I/O supervisor decisions: restart intensity, restart policy, strategy plans, stop order.

No event loop: these are plain functions over ids, restart types and timestamps.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import pytest

from beamish.runtime import KILLED, NORMAL, SHUTDOWN, ExitReason, InvalidOptionError
from beamish.runtime.exits import crash, shutdown
from beamish.runtime.restarts import (
    Restart,
    RestartIntensity,
    Strategy,
    plan_restart,
    should_restart,
    shutdown_order,
)

CRASH = crash(RuntimeError("boom"))
SHUTDOWN_WITH_DETAIL = shutdown("going away")

CHILDREN: list[tuple[Hashable, Restart]] = [
    ("a", "permanent"),
    ("b", "temporary"),
    ("c", "transient"),
    ("d", "temporary"),
    ("e", "permanent"),
]


# -- RestartIntensity -------------------------------------------------------------------------


def test_defaults_are_three_restarts_in_five_seconds() -> None:
    """The default intensity is OTP's: max_restarts=3, max_seconds=5."""
    intensity = RestartIntensity()
    assert (intensity.max_restarts, intensity.max_seconds) == (3, 5.0)


def test_three_restarts_within_window_are_allowed() -> None:
    """Three restarts inside 5 s are within the default intensity."""
    intensity = RestartIntensity(3, 5)
    assert [intensity.add(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert intensity.recent == 3


def test_fourth_restart_within_window_is_refused() -> None:
    """The fourth restart within 5 s exceeds 3-in-5 and is refused."""
    intensity = RestartIntensity(3, 5)
    for t in (0.0, 1.0, 2.0):
        assert intensity.add(t)
    assert intensity.add(4.9) is False


def test_restart_exactly_max_seconds_later_still_counts() -> None:
    """A restart exactly max_seconds old is still inside the window (OTP: Now - Then =< Period)."""
    intensity = RestartIntensity(3, 5)
    for t in (0.0, 1.0, 2.0):
        assert intensity.add(t)
    assert intensity.add(5.0) is False


def test_old_restarts_expire_from_the_window() -> None:
    """Restarts older than max_seconds no longer count."""
    intensity = RestartIntensity(3, 5)
    for t in (0.0, 1.0, 2.0):
        assert intensity.add(t)
    assert intensity.add(5.5) is True
    assert intensity.recent == 3  # 1.0, 2.0, 5.5


def test_restarts_spaced_beyond_window_never_exceed() -> None:
    """One restart every 6 s never exceeds 3-in-5, however many there are."""
    intensity = RestartIntensity(3, 5)
    assert all(intensity.add(6.0 * i) for i in range(100))
    assert intensity.recent == 1


def test_max_restarts_zero_refuses_the_first_restart() -> None:
    """With max_restarts=0 any restart exceeds the intensity."""
    intensity = RestartIntensity(0, 5)
    assert intensity.add(0.0) is False


def test_max_restarts_one_allows_exactly_one_per_window() -> None:
    """With max_restarts=1 a second restart within the window is refused, later ones allowed."""
    intensity = RestartIntensity(1, 2)
    assert intensity.add(0.0) is True
    assert intensity.add(1.0) is False
    assert RestartIntensity(1, 2).add(10.0) is True


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_restarts": -1}, "max_restarts"),
        ({"max_restarts": 1.5}, "max_restarts"),
        ({"max_restarts": True}, "max_restarts"),
        ({"max_restarts": "3"}, "max_restarts"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"max_seconds": -1.0}, "max_seconds"),
        ({"max_seconds": "5"}, "max_seconds"),
        ({"max_seconds": True}, "max_seconds"),
        ({"max_seconds": float("nan")}, "max_seconds"),
    ],
)
def test_invalid_intensity_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    """An invalid max_restarts or max_seconds raises InvalidOptionError naming that field."""
    with pytest.raises(InvalidOptionError, match=f"invalid {field}:") as info:
        RestartIntensity(**kwargs)
    assert info.value.field == field


# -- should_restart ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "reason", "expected"),
    [
        ("permanent", NORMAL, True),
        ("permanent", SHUTDOWN, True),
        ("permanent", SHUTDOWN_WITH_DETAIL, True),
        ("permanent", CRASH, True),
        ("permanent", KILLED, True),
        ("transient", NORMAL, False),
        ("transient", SHUTDOWN, False),
        ("transient", SHUTDOWN_WITH_DETAIL, False),
        ("transient", CRASH, True),
        ("transient", KILLED, True),
        ("temporary", NORMAL, False),
        ("temporary", SHUTDOWN, False),
        ("temporary", SHUTDOWN_WITH_DETAIL, False),
        ("temporary", CRASH, False),
        ("temporary", KILLED, False),
    ],
)
def test_should_restart(restart: Restart, reason: ExitReason, expected: bool) -> None:
    """permanent always restarts, transient only on abnormal exits, temporary never."""
    assert should_restart(restart, reason) is expected


# -- plan_restart -----------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_failed_child() -> None:
    """one_for_one stops nothing else and starts only the failed child."""
    assert plan_restart("one_for_one", CHILDREN, "c") == ([], ["c"])


def test_one_for_all_stops_others_in_reverse_and_restarts_all_but_temporary() -> None:
    """one_for_all stops every sibling in reverse start order, restarts non-temporary ones."""
    to_stop, to_start = plan_restart("one_for_all", CHILDREN, "c")
    assert to_stop == ["e", "d", "b", "a"]
    assert to_start == ["a", "c", "e"]


def test_rest_for_one_stops_and_restarts_the_failed_and_later_children() -> None:
    """rest_for_one affects the failed child and those started after it, not earlier ones."""
    to_stop, to_start = plan_restart("rest_for_one", CHILDREN, "c")
    assert to_stop == ["e", "d"]
    assert to_start == ["c", "e"]


def test_rest_for_one_on_the_last_child_is_like_one_for_one() -> None:
    """rest_for_one on the last child stops nothing else."""
    assert plan_restart("rest_for_one", CHILDREN, "e") == ([], ["e"])


def test_rest_for_one_on_the_first_child_is_like_one_for_all() -> None:
    """rest_for_one on the first child affects every child."""
    assert plan_restart("rest_for_one", CHILDREN, "a") == plan_restart(
        "one_for_all", CHILDREN, "a"
    )


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
def test_plan_for_a_lone_child(strategy: Strategy) -> None:
    """With a single child every strategy just restarts it."""
    assert plan_restart(strategy, [("only", "permanent")], "only") == ([], ["only"])


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
def test_plan_for_an_unknown_child_raises_key_error(strategy: Strategy) -> None:
    """Planning a restart for an id that is not a child raises KeyError."""
    with pytest.raises(KeyError):
        plan_restart(strategy, CHILDREN, "nope")


def test_invalid_strategy_names_the_field() -> None:
    """An unknown strategy raises InvalidOptionError naming 'strategy'."""
    bad: Any = "all_for_one"
    with pytest.raises(InvalidOptionError, match="invalid strategy: 'all_for_one'"):
        plan_restart(bad, CHILDREN, "a")


# -- shutdown_order ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "expected"),
    [([], []), (["a"], ["a"]), (["a", "b", "c"], ["c", "b", "a"])],
)
def test_shutdown_order_is_reverse_start_order(
    ids: Sequence[Hashable], expected: list[Hashable]
) -> None:
    """Children stop in reverse start order."""
    assert shutdown_order(ids) == expected
