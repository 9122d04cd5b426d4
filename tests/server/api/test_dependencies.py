"""Every endpoint and dependency of the API runs on the event loop.

FastAPI runs a plain ``def`` endpoint or dependency in a worker thread: a hop through the
thread pool on every request that uses it. Nothing in the API blocks, so each is a coroutine.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import beamish.server.api
from beamish.server import metrics


def _routers() -> Iterator[APIRouter]:
    """Every module-level router of the API's modules, and the metrics router."""
    for info in pkgutil.iter_modules(beamish.server.api.__path__):
        module = importlib.import_module(f"beamish.server.api.{info.name}")
        yield from (v for v in vars(module).values() if isinstance(v, APIRouter))
    yield from (v for v in vars(metrics).values() if isinstance(v, APIRouter))


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_coroutine(call: Any) -> bool:
    # A dependency may be an instance whose __call__ is a coroutine (HTTPBearer).
    method = None if inspect.isfunction(call) else type(call).__call__
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(method)


def test_every_endpoint_and_dependency_is_a_coroutine_function() -> None:
    """No route of the API has a plain-function endpoint or dependency."""
    routes = [r for router in _routers() for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 20
    found = {f"{r.path}: {getattr(call, '__qualname__', call)}"
             for r in routes for call in _calls(r.dependant) if not _is_coroutine(call)}
    assert found == set()
