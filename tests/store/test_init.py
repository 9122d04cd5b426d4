"""The public surface of ``beamish.store``."""

from __future__ import annotations

import beamish.store
from beamish.store import errors


def test_all_names_are_exported_once() -> None:
    """Every name in ``__all__`` exists and is listed once."""
    assert len(beamish.store.__all__) == len(set(beamish.store.__all__))
    for name in beamish.store.__all__:
        assert hasattr(beamish.store, name), name


def test_every_error_is_exported_and_a_store_error() -> None:
    """Each exception in errors.py is public and derives from StoreError."""
    classes = [v for v in vars(errors).values() if isinstance(v, type)
               and issubclass(v, Exception) and v.__module__ == errors.__name__]
    for cls in classes:
        assert issubclass(cls, errors.StoreError), cls
        assert cls.__name__ in beamish.store.__all__, cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the tree"
