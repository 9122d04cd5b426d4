"""Version checks of the adapters into dependencies' internals: releases and ranges."""

from __future__ import annotations

import logging

import pytest

from beamish import _versions


@pytest.mark.parametrize(("version", "release"), [
    ("0.55.0", (0, 55, 0)), ("0.23.0rc1", (0, 23, 0)), ("1.2.post3", (1, 2)), ("", ()),
    ("dev", ()),
])
def test_a_release_is_the_leading_numbers(version: str, release: _versions.Release) -> None:
    """Pre-release and post-release tags are dropped; no numbers is the empty release."""
    assert _versions.release(version) == release


def test_the_range_includes_its_lowest_and_excludes_below_and_its_pre_releases() -> None:
    """[lowest, below): 0.20.0 and 0.22.9 are in; 0.23.0rc1, 0.19.9 and unknown are out."""
    bounds = ((0, 20), (0, 23))
    assert [_versions.verified(v, *bounds) for v in ("0.20.0", "0.22.9", "0.23.0rc1",
                                                     "0.19.9", "")] == [
        True, True, False, False, False]


def test_a_missing_distribution_has_no_version() -> None:
    """installed() answers "" for a distribution that is not installed."""
    assert _versions.installed("beamish-no-such-distribution") == ""


def test_a_warning_is_logged_once_per_message(caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """warn_once logs each message the first time only."""
    monkeypatch.setattr(_versions, "_warned", set())
    log = logging.getLogger("beamish.test")
    with caplog.at_level(logging.WARNING, logger="beamish.test"):
        for message in ("a", "b", "a"):
            _versions.warn_once(log, message)
    assert [r.getMessage() for r in caplog.records] == ["a", "b"]
