"""The ``beamish`` command line.

``beamish serve [--host H] [--port P] [--database-url URL] [--config FILE] [--dev]
[--log-format text|json]`` runs the
server: the HTTP API and the Phoenix socket on one port (127.0.0.1:4000, SQLite
``beamish.db`` and the offline echo provider unless configured). SIGTERM or Ctrl-C stops it in
order — sockets closed with 1001, usage flushed — and it exits 0.

``beamish migrate`` applies pending migrations and prints what it applied.

Every command that opens the database reads the same ``Settings`` as ``serve``: its
``--database-url`` (``--url`` is its old name, kept for one release), else
``BEAMISH_DATABASE_URL``, else ``database_url`` in ``beamish.toml`` (or ``--config FILE``),
else ``sqlite:///beamish.db``. A SQLite file whose directory does not exist is refused (a
typo would start an empty database elsewhere); ``.beamish/`` is created when needed.

``beamish token create --user U [--admin] [--expires-in DURATION | --no-expiry]`` prints a
signed user token (scope ``user``, plus ``admin`` with ``--admin``; it expires in 30 days
unless asked otherwise), keyed from ``BEAMISH_SECRET_KEY``, and records its id in the
database; ``beamish token list [--user U]`` lists the ids, and ``beamish token revoke ID``
revokes one (running servers refuse it within 30 s). With ``--link [--base-url URL]`` it
prints a one-time sign-in link for the web app instead (``URL/sign-in/link?code=...``; the
base defaults to ``[server]``'s address): it works once, within 15 minutes
(``beamish.web.links``), and its id is listed and revocable like a token's. The key is read
from the environment only, never from the command line, where other users could see it.
``U`` must be an id the API accepts (``beamish.auth.names``).

``beamish config get --user U [--task T]`` shows what the user gets for a task, field by field
with the layer it came from, and their stored configs; ``beamish config set --user U
--provider P --model M [--task T]`` sets the user's default (or the task's override).
A running server sees a change made here within its cache TTL (300 s); changes through the
HTTP API or a channel reach it at once.

``beamish usage [--user U] [--days N] [--top N]`` prints usage tables from the ledger.

``beamish sessions [--server URL] [--user U]`` lists the live sessions of a running server
(through its admin API, with a token signed from the same key).

``beamish jobs enqueue|list|show|cancel --user U [--server URL]`` works a user's LLM jobs on a
running server (whose workers run them), through its HTTP API with a short-lived token of
``U`` signed from the same key: ``enqueue (--prompt TEXT | --template NAME [--var K=V ...])``
prints the job's handle, ``list [--status S] [--template T] [--model M] [--feedback up|down]
[--limit N] [--cursor C]`` the user's outputs, newest first, that match every filter given
(``--feedback``: those the user rated so), ``limit`` (default 20) a page; when there are
more it prints the ``--cursor`` that fetches the next page (give it with the same filters).
``show OUTPUT_ID`` prints one output with its answer, ``cancel JOB_ID`` cancels a pending or
running job. An error the server answers is printed as it said it.

Without ``BEAMISH_SECRET_KEY``, ``serve``, ``token`` and ``sessions`` use a key kept in
``.beamish/secret_key`` (generated on first use; see ``beamish.server.keyfile``). Either must
be a Fernet key, checked before anything starts (``beamish.settings.check_secret_key``).

Bad arguments (``--port 99999``) are argparse errors (exit status 2); bad configuration is
one line on stderr and exit status 1; output cut short by a closed pipe (``beamish usage |
head -1``) ends quietly. ``beamish --version`` prints the installed version.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlencode

from beamish.auth import SECRET_KEY_ENV, TokenSigner, issue_token
from beamish.auth.names import NAME_RULE, is_name
from beamish.auth.tokens import new_token_id
from beamish.jobs.api import MAX_WAIT_S
from beamish.llm.errors import LLMError
from beamish.llm.resolver import ConfigResolver
from beamish.server.keyfile import ensure_secret_key
from beamish.settings import Settings, check_secret_key, check_sqlite_path, load_settings
from beamish.store import (
    Provider,
    Store,
    StoreError,
    TaskOverride,
    UsageTotals,
    UserNotFoundError,
    migrate,
    open_store,
)
from beamish.store.job_models import OutputStatus, Rating

PROVIDER_KINDS = get_args(Provider)
MAX_USER_ID = 255
DEFAULT_SERVER = "http://127.0.0.1:4000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beamish", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"beamish {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (HTTP API + channels)")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=None, help="port (default 4000)")
    _store_options(serve)
    serve.add_argument("--dev", action="store_true",
                       help="also trust a user_id param (loopback only; never in production)")
    serve.add_argument("--log-format", choices=("text", "json"), default=None,
                       help="log lines as text (default) or one JSON object each")
    mig = commands.add_parser("migrate", help="apply pending database migrations")
    _store_options(mig)
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
    create.add_argument("--link", action="store_true",
                        help="print a one-time sign-in link for the web app instead")
    create.add_argument("--base-url", default=None, metavar="URL",
                        help="where the web app is served, for --link (default: [server])")
    _store_options(create)  # where the token's id is recorded
    listing = token_commands.add_parser("list", help="the tokens issued, with their ids")
    listing.add_argument("--user", default=None, help="only this user's tokens")
    _store_options(listing)
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="ID",
                        help="the id `token list` shows (one that begins with '-' goes after "
                             "'--': token revoke -- ID)")
    _store_options(revoke)
    _config_parser(commands)
    usage = commands.add_parser("usage", help="usage tables from the ledger")
    usage.add_argument("--user", default=None, type=_user_id,
                       help="one user's usage (default: everyone's)")
    usage.add_argument("--days", type=_positive(int), default=30,
                       help="window in days (default 30)")
    usage.add_argument("--top", type=_positive(int), default=10,
                       help="top users listed (default 10)")
    _store_options(usage)
    sessions = commands.add_parser("sessions", help="live sessions of a running server")
    sessions.add_argument("--server", default=DEFAULT_SERVER, help=f"default {DEFAULT_SERVER}")
    sessions.add_argument("--user", default=None, help="only this user's sessions")
    _jobs_parser(commands)
    return parser


def _store_options(command: argparse.ArgumentParser) -> None:
    """The options of every command that opens the database: the same names everywhere."""
    command.add_argument("--database-url", default=None, metavar="URL",
                         help="sqlite:///... or postgresql://... (default: BEAMISH_DATABASE_URL, "
                              "then beamish.toml, then sqlite:///beamish.db)")
    # The old name of --database-url on migrate, config and usage; hidden, for one release.
    command.add_argument("--url", dest="database_url", help=argparse.SUPPRESS)
    command.add_argument("--config", default=None, metavar="FILE",
                         help="a beamish.toml to read (default: ./beamish.toml if present)")


def _config_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="a user's LLM configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    get = config_commands.add_parser("get", help="what a user gets, with provenance")
    get.add_argument("--user", required=True, type=_user_id)
    get.add_argument("--task", default="chat", type=_task_type, help="task type (default chat)")
    _store_options(get)
    put = config_commands.add_parser("set", help="set a user's default or task override")
    put.add_argument("--user", required=True, type=_user_id)
    put.add_argument("--provider", required=True, help=" | ".join(PROVIDER_KINDS))
    put.add_argument("--model", required=True, type=_model)
    put.add_argument("--task", default=None, type=_task_type,
                     help="override one task type instead")
    _store_options(put)


def _version() -> str:
    try:
        return importlib.metadata.version("beamish")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "(not installed)"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{port} is not a port; use 1-65535 (0: any free port)")
    return port


def _user_id(text: str) -> str:
    # The store's limit (1 to 255 characters): past it the database's CHECK would answer.
    if not 1 <= len(text) <= MAX_USER_ID:
        raise argparse.ArgumentTypeError(f"a user id has 1 to {MAX_USER_ID} characters")
    return text


def _task_type(text: str) -> str:
    from beamish.server.api.models import NAME_PATTERN  # the API's rule; loads FastAPI

    if re.fullmatch(NAME_PATTERN, text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a task type: 1 to 128 letters, digits and _.:@-")
    return text


def _model(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a model name cannot be empty")
    return text


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    name = args.command
    try:
        status = _run(args)
        sys.stdout.flush()  # inside the try: a closed pipe is found here, not at exit
    except BrokenPipeError:
        # The reader went away (`beamish usage | head -1`): not an error to report. Point
        # stdout at /dev/null so that the interpreter's own flush at exit stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (StoreError, LLMError, ValueError, OSError) as exc:
        # ValueError covers pydantic's ValidationError, SettingsError and a bad signing key.
        what = f"{name} {args.token_command}" if name == "token" else name
        print(f"beamish {what}: {exc}", file=sys.stderr)
        return 1
    return status


def _run(args: argparse.Namespace) -> int:
    name = args.command
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
    if name == "jobs":
        return _jobs(args)
    return _sessions(args)


def _settings(args: argparse.Namespace) -> Settings:
    """What every command reads: the file, the environment, then these options on top."""
    overrides: dict[str, Any] = {}
    if args.config:
        overrides["config_file"] = Path(args.config)
    if args.database_url:
        overrides["database_url"] = args.database_url
    settings = load_settings(**overrides)
    check_sqlite_path(settings.database_url)
    return settings


def _secret_key(*, create: bool) -> Path | None:
    """Set ``BEAMISH_SECRET_KEY`` from the key file if unset; refuse a key Fernet refuses."""
    key_file = ensure_secret_key(create=create)
    source = SECRET_KEY_ENV if key_file is None else f"the key in {key_file}"
    check_secret_key(os.environ.get(SECRET_KEY_ENV), source=source)
    return key_file


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from beamish.server.serve import (
        BeamishServer,
        configure_serving_logs,
        serving_event_loop,
        tune_for_serving,
    )

    key_file = _secret_key(create=True)  # first: Settings then reads it as secret_key
    settings = _settings(args)
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

    from beamish.web import install_web

    async def run() -> int:
        async with BeamishServer(settings, installs=[install_web]) as server:
            tune_for_serving()  # this process only serves: its startup heap is for life
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, server.stop)
            print(f"beamish serving on {server.url} (web app: {server.url}/, websocket: "
                  f"ws://{settings.server.host}:{server.port}/socket/websocket)", flush=True)
            await server.wait()
            print("beamish: stopping (closing sockets, flushing usage)", flush=True)
        # Non-zero when the runtime died on its own, so a process supervisor restarts us.
        return 1 if server.failed else 0

    try:
        loop_factory, loop_name = serving_event_loop(settings.server.event_loop)
    except ImportError as error:
        print(f"beamish serve: [server] event_loop is uvloop, which cannot be imported "
              f"({error}); install it, or set it to auto or asyncio", file=sys.stderr)
        return 2
    logging.getLogger("beamish.server").info("event loop: %s", loop_name)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run())


# -- migrate, token ---------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate(_settings(args).database_url))
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
        _secret_key(create=False)
        signer = TokenSigner()  # a missing or short key fails here, before the database
    async with open_store(_settings(args).database_url) as store:
        if args.token_command == "create":
            return await _token_create(store, signer, args)
        if args.token_command == "list":
            return await _token_list(store, args)
        return await _token_revoke(store, args)


async def _token_create(store: Store, signer: TokenSigner, args: argparse.Namespace) -> int:
    if args.link:
        return await _token_link(store, args)
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


async def _token_link(store: Store, args: argparse.Namespace) -> int:
    from beamish.web.links import SignInLinks

    code, link = SignInLinks().issue(args.user, admin=args.admin)
    await store.record_token(link.code_id, args.user, admin=args.admin,
                             expires_at=datetime.fromtimestamp(link.expires_at, UTC))
    server = _settings(args).server
    base = (args.base_url or f"http://{server.host}:{server.port}").rstrip("/")
    print(f"{base}/sign-in/link?{urlencode({'code': code})}")
    print(f"beamish: a one-time sign-in link for {args.user}, until "
          f"{datetime.fromtimestamp(link.expires_at, UTC):%Y-%m-%d %H:%M}Z (id {link.code_id}; "
          f"revoke it with: beamish token revoke {link.code_id})", file=sys.stderr)
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
    settings = _settings(args)
    if args.config_command == "set" and args.provider not in PROVIDER_KINDS:
        raise ValueError(f"unknown provider {args.provider!r}; use one of: "
                         f"{', '.join(PROVIDER_KINDS)}")
    async with open_store(settings.database_url) as store:
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
    async with open_store(_settings(args).database_url) as store:
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
    print()
    print("\n".join(table_lines(headers, rows)))


def table_lines(headers: list[str], rows: list[list[object]]) -> list[str]:
    """``rows`` under ``headers`` in aligned columns: numbers right, anything else left.

    A column is numeric when every value in it is an int (shown with thousands separators);
    how a text value starts (a session id starting with a digit) does not change its side.
    """
    numeric = [bool(rows) and all(isinstance(row[i], int) for row in rows)
               for i in range(len(headers))]
    cells = [headers, *[[f"{v:,}" if isinstance(v, int) else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if right else c.ljust(w)
                               for c, w, right in zip(row, widths, numeric, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not rows:
        lines.append("(none)")
    return lines


# -- sessions ---------------------------------------------------------------------------------


def _sessions(args: argparse.Namespace) -> int:
    import httpx

    _secret_key(create=False)
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


# -- jobs -------------------------------------------------------------------------------------

JOB_FORMATS = ("text", "json", "markdown", "html")
OUTPUT_STATUSES: tuple[str, ...] = get_args(OutputStatus)
RATINGS: tuple[str, ...] = get_args(Rating)


def _jobs_parser(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="a user's LLM jobs on a running server")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    enqueue = job_commands.add_parser(
        "enqueue", help="queue a prompt or template job",
        description="Queue a job: a raw --prompt, a --template, or neither (the template "
                    "that --task's configuration names for the user).")
    source = enqueue.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="a raw prompt")
    source.add_argument("--template", help="a template's name")
    enqueue.add_argument("--var", action="append", default=[], type=_variable,
                         metavar="K=V", help="a template variable (V read as JSON when it "
                                             "parses, else as text); repeat for each")
    enqueue.add_argument("--label", default=None, help="the template label to render")
    enqueue.add_argument("--system", default=None, help="a raw system prompt")
    enqueue.add_argument("--format", choices=JOB_FORMATS, default=None,
                         help="the answer's format (default: the template's, else text)")
    enqueue.add_argument("--task", default=None, type=_task_type, help="the task type")
    enqueue.add_argument("--queue", default="default", help="high, default or low")
    enqueue.add_argument("--priority", type=int, default=0,
                         help="within the queue, lower runs first (default 0)")
    enqueue.add_argument("--unique-key", default=None,
                         help="answer the pending or running job of this key instead")
    listing = job_commands.add_parser("list", help="the user's outputs, newest first")
    listing.add_argument("--status", choices=OUTPUT_STATUSES, default=None)
    listing.add_argument("--template", default=None, help="only this template's")
    listing.add_argument("--model", default=None, type=_model, help="only this model's")
    listing.add_argument("--feedback", choices=RATINGS, default=None,
                         help="only those the user rated so")
    listing.add_argument("--limit", type=_positive(int), default=20, help="default 20")
    listing.add_argument("--cursor", default=None,
                         help="the next page: the cursor the previous page printed "
                              "(with the same filters)")
    show = job_commands.add_parser("show", help="one output, with its answer")
    show.add_argument("output_id")
    for command in (enqueue, show):
        command.add_argument("--wait", type=_wait_s, default=0, metavar="SECONDS",
                             help=f"wait up to this long (at most {MAX_WAIT_S:g}) for the "
                                  "output to end, then show it")
    cancel = job_commands.add_parser("cancel", help="cancel a pending or running job")
    cancel.add_argument("job_id", type=_positive(int))
    for command in (enqueue, listing, show, cancel):
        command.add_argument("--user", required=True, type=_user_id, help="whose jobs")
        command.add_argument("--server", default=DEFAULT_SERVER,
                             help=f"default {DEFAULT_SERVER}")


def _wait_s(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"--wait is 0 to {MAX_WAIT_S:g} seconds")
    return seconds


def _variable(text: str) -> tuple[str, Any]:
    import json

    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not K=V")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _jobs(args: argparse.Namespace) -> int:
    import httpx

    _secret_key(create=False)
    token = issue_token(args.user, expires_in=60)
    what = f"beamish jobs {args.jobs_command}"
    headers = {"Authorization": f"Bearer {token}"}
    wait = getattr(args, "wait", 0)
    method, path, body, params = _job_request(args)
    try:
        response = httpx.request(method, f"{args.server.rstrip('/')}{path}", json=body,
                                 params=params, timeout=30 + wait, headers=headers)
        if response.status_code < 400:
            _print_jobs_answer(args.jobs_command, response.json())
        if response.status_code < 400 and args.jobs_command == "enqueue" and wait:
            print()
            response = httpx.get(f"{args.server.rstrip('/')}/api/v1/llm_outputs/"
                                 f"{response.json()['output_id']}", params={"wait_s": wait},
                                 timeout=30 + wait, headers=headers)
            if response.status_code < 400:
                _show_output(response.json())
    except httpx.HTTPError as exc:
        print(f"{what}: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    if response.status_code >= 400:
        print(f"{what}: {args.server} answered {response.status_code}: "
              f"{_said(response)}", file=sys.stderr)
        return 1
    return 0


def _job_request(args: argparse.Namespace,
                 ) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    command = args.jobs_command
    if command == "enqueue":
        body = {"prompt": args.prompt, "template": args.template, "variables": dict(args.var),
                "label": args.label, "system": args.system, "format": args.format,
                "task_type": args.task, "queue": args.queue, "priority": args.priority,
                "unique_key": args.unique_key}
        return "POST", "/api/v1/llm_jobs", {k: v for k, v in body.items()
                                            if v is not None}, {}
    if command == "list":
        params = {"status": args.status, "template": args.template, "model": args.model,
                  "feedback": args.feedback, "cursor": args.cursor, "limit": args.limit}
        return "GET", "/api/v1/llm_outputs", None, {k: v for k, v in params.items()
                                                   if v is not None}
    if command == "show":
        return "GET", f"/api/v1/llm_outputs/{args.output_id}", None, (
            {"wait_s": args.wait} if args.wait else {})
    return "POST", f"/api/v1/llm_jobs/{args.job_id}/cancel", None, {}


def _said(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(response.text[:300])


def _print_jobs_answer(command: str, answer: dict[str, Any]) -> None:
    if command == "enqueue":
        _table(["job", "output", "status", "new", "estimated completion"],
               [[str(answer["job_id"]), answer["output_id"], answer["status"],
                 "yes" if answer["created"] else "no (same unique key)",
                 answer["estimated_completion"]]])
    elif command == "list":
        _table(["output", "job", "status", "template", "model", "attempts", "created"],
               [[o["output_id"], str(o["job_id"]), o["status"], _template_of(o),
                 o["model"] or "-", o["attempts"], o["created_at"][:19]]
                for o in answer["outputs"]])
        if answer["next_cursor"]:
            print(f"\nmore: the next page is --cursor {answer['next_cursor']} "
                  "(with the same filters)")
    else:
        _show_output(answer)


def _template_of(output: dict[str, Any]) -> str:
    name, version = output["template_name"], output["template_version"]
    return "-" if name is None else f"{name} v{version}" if version else name


def _show_output(output: dict[str, Any]) -> None:
    fields = [("output", output["output_id"]), ("job", output["job_id"]),
              ("status", output["status"]), ("template", _template_of(output)),
              ("model", f"{output['provider'] or '-'} / {output['model'] or '-'}"),
              ("format", output["format"]), ("attempts", output["attempts"]),
              ("tokens", f"{output['prompt_tokens']} in, {output['completion_tokens']} out"),
              ("latency", "-" if output["latency_ms"] is None
               else f"{output['latency_ms']} ms"),
              ("created", output["created_at"]), ("error", output["error"] or "-")]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")
    if output["raw_response"] is not None:
        print(f"\n{output['raw_response']}")


if __name__ == "__main__":
    sys.exit(main())
