"""The ``beamish`` command line.

``beamish migrate [--url URL]`` applies pending migrations (the URL defaults to
``BEAMISH_DATABASE_URL``, then ``sqlite:///beamish.db``) and prints what it applied.
Later issues add ``serve`` and ``token``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from beamish.store import StoreError, migrate

DEFAULT_URL = "sqlite:///beamish.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beamish", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mig = commands.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument("--url", default=None, help="database URL (sqlite:///... or postgresql://...)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        url = args.url or os.environ.get("BEAMISH_DATABASE_URL") or DEFAULT_URL
        try:
            applied = asyncio.run(migrate(url))
        except StoreError as exc:
            print(f"beamish migrate: {exc}", file=sys.stderr)
            return 1
        print("\n".join(f"applied {name}" for name in applied) or "already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
