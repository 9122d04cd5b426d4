"""Fixtures for the resolution tests: the store fixtures of ``tests/store`` (every
store-backed test runs on SQLite and on PostgreSQL) and a clock for cache TTLs.
"""

from __future__ import annotations

import pytest

from tests._clock import FakeClock
from tests.store.conftest import store, store_url

__all__ = ["clock", "store", "store_url"]


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at 0."""
    return FakeClock()
