"""The event loop ``beamish serve`` runs on: ``[server] event_loop``."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from beamish.server.serve import serving_event_loop


def test_the_serving_event_loop_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio is asyncio; auto and uvloop take uvloop; without uvloop, auto falls back and
    uvloop is an ImportError."""
    assert serving_event_loop("asyncio") == (asyncio.new_event_loop, "asyncio")
    for choice in ("auto", "uvloop"):
        factory, name = serving_event_loop(choice)
        assert factory is uvloop.new_event_loop
        assert name.startswith("uvloop ")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert serving_event_loop("auto") == (asyncio.new_event_loop, "asyncio")
    with pytest.raises(ImportError):
        serving_event_loop("uvloop")
