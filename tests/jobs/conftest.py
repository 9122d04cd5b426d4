"""Fixtures of the job tests: the store tests' ``store_url`` and ``store`` (each test on a
fresh SQLite file and a fresh PostgreSQL database)."""

from tests.store.conftest import store, store_url

__all__ = ["store", "store_url"]
