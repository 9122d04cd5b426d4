"""Installed versions of dependencies, for the adapters that reach into one's internals.

beamish touches a dependency's private parts only behind one adapter, which knows the
versions it was checked against as a half-open range of releases, ``[lowest, below)``, and
serves through the dependency's public API outside it, logging a warning once:

* ``beamish.server.websocket_adapter``: uvicorn's (and websockets') protocol internals;
* ``beamish.store._sqlite_ledger``: aiosqlite's request queue and its sqlite3 connection.

Each has a test that fails when the installed version is outside its range, so an upgrade
forces a new check, and one that forces the public fallback and proves it works.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re

Release = tuple[int, ...]

_LEADING_NUMBERS = re.compile(r"\d+(?:\.\d+)*")
_warned: set[str] = set()


def installed(distribution: str) -> str:
    """The installed version of ``distribution`` ("0.55.0"), or "" if none is installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def release(version: str) -> Release:
    """The release numbers a version starts with: "0.23.0rc1" is (0, 23, 0); "" is ()."""
    match = _LEADING_NUMBERS.match(version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def verified(version: str, lowest: Release, below: Release) -> bool:
    """Whether ``version`` is in ``[lowest, below)``; a pre-release of ``below`` is not."""
    return lowest <= release(version) < below


def warn_once(log: logging.Logger, message: str) -> None:
    """Log ``message`` at WARNING the first time it is seen in this process."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


__all__ = ["Release", "installed", "release", "verified", "warn_once"]
