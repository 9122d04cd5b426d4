"""The ``beamish`` command line.

``beamish serve [--host H] [--port P] [--database-url URL] [--config FILE] [--dev]
[--log-format text|json]`` runs the
server: the HTTP API and the Phoenix socket on one port (127.0.0.1:4000, SQLite
``beamish.db`` and the offline echo provider unless configured). SIGTERM or Ctrl-C stops it in
order — sockets closed with 1001, usage flushed — and it exits 0.

``beamish migrate [--url URL]`` applies pending migrations (the URL defaults to
``BEAMISH_DATABASE_URL``, then ``sqlite:///beamish.db``) and prints what it applied.

``beamish token create --user U [--admin] [--expires-in DURATION | --no-expiry] [--url URL]``
prints a signed user token (scope ``user``, plus ``admin`` with ``--admin``; it expires in 30
days unless asked otherwise), keyed from ``BEAMISH_SECRET_KEY``, and records its id in the
database; ``beamish token list [--user U]`` lists the ids, and ``beamish token revoke ID``
revokes one (running servers refuse it within 30 s). The key is read from the environment
only, never from the command line, where other users could see it. ``U`` must be an id
the API accepts (``beamish.auth.names``).

``beamish config get --user U [--task T]`` shows what the user gets for a task, field by field
with the layer it came from, and their stored configs; ``beamish config set --user U
--provider P --model M [--task T]`` sets the user's default (or the task's override).
A running server sees a change made here within its cache TTL (300 s); changes through the
HTTP API or a channel reach it at once.

``beamish usage [--user U] [--days N] [--top N]`` prints usage tables from the ledger.

``beamish sessions [--server URL] [--user U]`` lists the live sessions of a running server
(through its admin API, with a token signed from the same key).

Without ``BEAMISH_SECRET_KEY``, ``serve``, ``token`` and ``sessions`` use a key kept in
``.beamish/secret_key`` (generated on first use; see ``beamish.server.keyfile``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from beamish.auth import TokenSigner, issue_token
from beamish.auth.names import NAME_RULE, is_name
from beamish.auth.tokens import new_token_id
from beamish.llm.errors import LLMError
from beamish.llm.resolver import ConfigResolver
from beamish.server.keyfile import ensure_secret_key
from beamish.settings import Settings
from beamish.store import (
    Store,
    StoreError,
    TaskOverride,
    UsageTotals,
    UserNotFoundError,
    migrate,
    open_store,
)

DEFAULT_URL = "sqlite:///beamish.db"
DEFAULT_SERVER = "http://127.0.0.1:4000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beamish", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (HTTP API + channels)")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 4000)")
    serve.add_argument("--database-url", default=None, help="sqlite:///... or postgresql://...")
    serve.add_argument("--config", default=None, help="a beamish.toml to read")
    serve.add_argument("--dev", action="store_true",
                       help="also trust a user_id param (loopback only; never in production)")
    serve.add_argument("--log-format", choices=("text", "json"), default=None,
                       help="log lines as text (default) or one JSON object each")
    mig = commands.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument("--url", default=None, help="database URL (sqlite:///... or postgresql://...)")
    token = commands.add_parser("token", help="signed user tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="print a token for a user (key: BEAMISH_SECRET_KEY)")
    create.add_argument("--user", required=True, help="the user id the token speaks for")
    create.add_argument("--admin", action="store_true", help="add the admin scope")
    create.add_argument("--expires-in", type=_duration, default=DEFAULT_TOKEN_LIFETIME_S,
                        metavar="DURATION",
                        help="lifetime: seconds, or a number with s, m, h or d (default 30d)")
    create.add_argument("--no-expiry", action="store_true",
                        help="a token that never expires (revoke it with token revoke)")
    create.add_argument("--url", default=None, help="database URL (where its id is recorded)")
    listing = token_commands.add_parser("list", help="the tokens issued, with their ids")
    listing.add_argument("--user", default=None, help="only this user's tokens")
    listing.add_argument("--url", default=None, help="database URL")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="ID", help="the id `token list` shows")
    revoke.add_argument("--url", default=None, help="database URL")
    _config_parser(commands)
    usage = commands.add_parser("usage", help="usage tables from the ledger")
    usage.add_argument("--user", default=None, help="one user's usage (default: everyone's)")
    usage.add_argument("--days", type=int, default=30, help="window in days (default 30)")
    usage.add_argument("--top", type=int, default=10, help="top users listed (default 10)")
    usage.add_argument("--url", default=None, help="database URL")
    sessions = commands.add_parser("sessions", help="live sessions of a running server")
    sessions.add_argument("--server", default=DEFAULT_SERVER, help=f"default {DEFAULT_SERVER}")
    sessions.add_argument("--user", default=None, help="only this user's sessions")
    return parser


def _config_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="a user's LLM configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    get = config_commands.add_parser("get", help="what a user gets, with provenance")
    get.add_argument("--user", required=True)
    get.add_argument("--task", default="chat", help="task type (default chat)")
    get.add_argument("--url", default=None, help="database URL")
    put = config_commands.add_parser("set", help="set a user's default or task override")
    put.add_argument("--user", required=True)
    put.add_argument("--provider", required=True,
                     help="openai | anthropic | ollama | tgi | openai_compatible | echo")
    put.add_argument("--model", required=True)
    put.add_argument("--task", default=None, help="override one task type instead")
    put.add_argument("--url", default=None, help="database URL")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    name = args.command
    try:
        if name == "serve":
            return _serve(args)
        if name == "migrate":
            return _migrate(args)
        if name == "token":
            return asyncio.run(_token(args))
        if name == "config":
            return asyncio.run(_config(args))
        if name == "usage":
            return asyncio.run(_usage(args))
        return _sessions(args)
    except (StoreError, LLMError, ValueError, OSError) as exc:
        # ValueError covers pydantic's ValidationError and a bad signing key.
        what = f"{name} {args.token_command}" if name == "token" else name
        print(f"beamish {what}: {exc}", file=sys.stderr)
        return 1


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from beamish.server.serve import BeamishServer, configure_serving_logs, tune_for_serving

    key_file = ensure_secret_key()
    overrides: dict[str, Any] = {}
    if args.config:
        overrides["config_file"] = Path(args.config)
    if args.database_url:
        overrides["database_url"] = args.database_url
    settings = Settings(**overrides)
    server_overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                          ("dev_mode", args.dev or None),
                                          ("log_format", args.log_format)) if v is not None}
    if server_overrides:
        settings = settings.model_copy(update={
            "server": settings.server.model_copy(update=server_overrides)})
    configure_serving_logs(request_log=settings.server.request_log,
                           json=settings.server.log_format == "json")
    if key_file is not None:
        print(f"beamish: no BEAMISH_SECRET_KEY set; using the key in {key_file} "
              "(create tokens in this directory: beamish token create --user YOU)",
              file=sys.stderr)

    async def run() -> None:
        async with BeamishServer(settings) as server:
            tune_for_serving()  # this process only serves: its startup heap is for life
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, server.stop)
            print(f"beamish serving on {server.url} (websocket: "
                  f"ws://{settings.server.host}:{server.port}/socket/websocket)", flush=True)
            await server.wait()
            print("beamish: stopping (closing sockets, flushing usage)", flush=True)

    asyncio.run(run())
    return 0


# -- migrate, token ---------------------------------------------------------------------------


def _database_url(url: str | None) -> str:
    return url or os.environ.get("BEAMISH_DATABASE_URL") or DEFAULT_URL


def _migrate(args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate(_database_url(args.url)))
    print("\n".join(f"applied {name}" for name in applied) or "already up to date")
    return 0


DEFAULT_TOKEN_LIFETIME_S = 30 * 86400.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """Seconds from ``3600``, ``90s``, ``15m``, ``12h`` or ``30d`` (argparse's type)."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; give seconds, or a number with s, m, h or d "
            "(30d)") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a lifetime must be more than 0")
    return seconds


async def _token(args: argparse.Namespace) -> int:
    if args.token_command == "create":
        if args.user and not is_name(args.user):  # empty: the signer says so
            raise ValueError(
                f"--user {args.user!r} is not a user id the API accepts ({NAME_RULE})")
        ensure_secret_key(create=False)
        signer = TokenSigner()  # a missing or short key fails here, before the database
    async with open_store(_database_url(args.url)) as store:
        if args.token_command == "create":
            return await _token_create(store, signer, args)
        if args.token_command == "list":
            return await _token_list(store, args)
        return await _token_revoke(store, args)


async def _token_create(store: Store, signer: TokenSigner, args: argparse.Namespace) -> int:
    expires_in = None if args.no_expiry else args.expires_in
    token_id = new_token_id()
    token = signer.issue(args.user, admin=args.admin, expires_in=expires_in, token_id=token_id)
    expires_at = signer.verify(token).expires_at
    await store.record_token(
        token_id, args.user, admin=args.admin,
        expires_at=None if expires_at is None else datetime.fromtimestamp(expires_at, UTC))
    print(token)
    until = "never expires" if expires_at is None else (
        f"expires {datetime.fromtimestamp(expires_at, UTC):%Y-%m-%d %H:%M}Z")
    print(f"beamish: token id {token_id} ({until}); revoke it with: beamish token revoke "
          f"{token_id}", file=sys.stderr)
    return 0


async def _token_list(store: Store, args: argparse.Namespace) -> int:
    tokens = await store.list_tokens(user_id=args.user)
    _table(["id", "user", "scope", "created", "expires", "revoked"], [[
        t.token_id, t.user_id, "admin" if t.admin else "user", _when(t.created_at),
        _when(t.expires_at) if t.expires_at else "never",
        _when(t.revoked_at) if t.revoked_at else ""] for t in tokens])
    return 0


async def _token_revoke(store: Store, args: argparse.Namespace) -> int:
    record = await store.revoke_token(args.token_id)
    if record is None:
        print(f"beamish token revoke: no token has the id {args.token_id!r}; "
              "`beamish token list` shows them", file=sys.stderr)
        return 1
    print(f"revoked {record.token_id} (user {record.user_id}); running servers refuse it "
          "within 30 s")
    return 0


def _when(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}Z"


# -- config, usage ----------------------------------------------------------------------------


async def _config(args: argparse.Namespace) -> int:
    settings = Settings()
    async with open_store(_database_url(args.url)) as store:
        resolver = ConfigResolver(store, settings.llm)
        if args.config_command == "set":
            await _set_config(store, args)
        resolved = await resolver.preview(args.user, args.task or "chat")
        print(resolved.explain())
        configs = await store.list_configs(args.user)
        for config in configs:
            default = " (default)" if config.is_default else ""
            print(f"  stored: {config.provider}:{config.model}{default}, "
                  f"used {config.usage_count} times")
    return 0


async def _set_config(store: Store, args: argparse.Namespace) -> None:
    try:
        await store.get_profile(args.user)
    except UserNotFoundError:
        await store.upsert_profile(args.user, actor="cli")
    if args.task:
        await store.set_task_override(args.user, TaskOverride(
            task_type=args.task, provider=args.provider, model=args.model), actor="cli")
    else:
        await store.set_default(args.user, args.provider, args.model, actor="cli")


async def _usage(args: argparse.Namespace) -> int:
    until = datetime.now(UTC)
    since = until - timedelta(days=args.days)
    async with open_store(_database_url(args.url)) as store:
        totals = await store.usage_totals(user_id=args.user, since=since, until=until)
        who = f"user {args.user}" if args.user else "all users"
        print(f"usage of {who}, last {args.days} days")
        _table(["requests", "errors", "prompt", "completion", "total"], [_row(totals)])
        by_model = await store.usage_by_provider_model(user_id=args.user, since=since,
                                                       until=until)
        _table(["provider", "model", "requests", "errors", "prompt", "completion", "total"],
               [[u.provider, u.model, *_row(u)] for u in by_model])
        by_task = await store.usage_by_task_type(user_id=args.user, since=since, until=until)
        _table(["task", "requests", "errors", "prompt", "completion", "total"],
               [[u.task_type, *_row(u)] for u in by_task])
        if args.user is None:
            top = await store.top_users(args.top, since=since, until=until)
            _table(["user", "requests", "errors", "prompt", "completion", "total"],
                   [[u.user_id, *_row(u)] for u in top])
    return 0


def _row(totals: UsageTotals) -> list[object]:
    return [totals.requests, totals.errors, totals.prompt_tokens, totals.completion_tokens,
            totals.total_tokens]


def _table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [headers, *[[f"{v:,}" if isinstance(v, int) else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print()
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n and c[:1].isdigit() else c.ljust(w)
                        for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not rows:
        print("(none)")


# -- sessions ---------------------------------------------------------------------------------


def _sessions(args: argparse.Namespace) -> int:
    import httpx

    ensure_secret_key(create=False)
    token = issue_token("beamish-cli", True, expires_in=60)
    params = {"user_id": args.user} if args.user else {}
    try:
        response = httpx.get(f"{args.server.rstrip('/')}/api/admin/sessions", params=params,
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as exc:
        print(f"beamish sessions: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"beamish sessions: {args.server} answered {response.status_code}: "
              f"{response.text[:300]}", file=sys.stderr)
        return 1
    sessions = response.json()["sessions"]
    _table(["session", "user"], [[s["session_id"], s["user_id"]] for s in sessions])
    print(f"\n{len(sessions)} live sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
