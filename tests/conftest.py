"""Fixtures shared by every test package.

``pg_server_url``: the one PostgreSQL server of the test session — the one named by
``BEAMISH_TEST_PG_URL``, else a private server started
with initdb/pg_ctl in a temporary directory (as the ``postgres`` user when run as root), else
None. Session-scoped here, at the root, so every package shares one server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.store import _pg


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str | None]:
    """URL of the session's PostgreSQL server, or None when there is none."""
    external = os.environ.get(_pg.ENV_URL)
    if external:
        yield external
        return
    bindir = _pg.find_bindir()
    if bindir is None:
        yield None
        return
    with _pg.local_server(bindir) as url:
        yield url
