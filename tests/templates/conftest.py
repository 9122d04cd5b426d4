"""Template tests reuse the store's fixtures: each store test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.store.conftest import store, store_url

__all__ = ["store", "store_url"]
