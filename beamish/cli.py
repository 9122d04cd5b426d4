"""The ``beamish`` command line.

``beamish migrate [--url URL]`` applies pending migrations (the URL defaults to
``BEAMISH_DATABASE_URL``, then ``sqlite:///beamish.db``) and prints what it applied.

``beamish token create --user U [--admin] [--expires-in SECONDS]`` prints a signed user token
(scope ``user``, plus ``admin`` with ``--admin``; no expiry unless asked), keyed from
``BEAMISH_SECRET_KEY``. The key is read from the environment only, never from the command
line, where other users could see it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from beamish.server.auth import issue_token
from beamish.store import StoreError, migrate

DEFAULT_URL = "sqlite:///beamish.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beamish", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mig = commands.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument("--url", default=None, help="database URL (sqlite:///... or postgresql://...)")
    token = commands.add_parser("token", help="signed user tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="print a token for a user (key: BEAMISH_SECRET_KEY)")
    create.add_argument("--user", required=True, help="the user id the token speaks for")
    create.add_argument("--admin", action="store_true", help="add the admin scope")
    create.add_argument("--expires-in", type=float, default=None, metavar="SECONDS",
                        help="lifetime in seconds (default: the token does not expire)")
    return parser


def _token_create(args: argparse.Namespace) -> int:
    try:
        token = issue_token(args.user, args.admin, expires_in=args.expires_in)
    except ValueError as exc:  # SigningKeyError too: a missing or short key
        print(f"beamish token create: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


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
    elif args.command == "token":
        return _token_create(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
