"""Chat tests that touch the store reuse its fixtures: SQLite and PostgreSQL each."""

from __future__ import annotations

from tests.store.conftest import store_url

__all__ = ["store_url"]
