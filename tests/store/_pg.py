"""A throwaway PostgreSQL server for the test session.

``BEAMISH_TEST_PG_URL`` names an existing server (its database is used only to create and
drop one database per test). Otherwise ``initdb`` + ``pg_ctl`` start a private cluster in a
temporary directory: loopback only, on a free port, with its unix socket in that directory,
``fsync`` off (the data is thrown away). Binaries are found on ``PATH``, then via
``pg_config --bindir``, then in ``/usr/lib/postgresql/*/bin``. As root, the cluster runs as
the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "BEAMISH_TEST_PG_URL"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True):
        return Path(found).parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> None:
    result = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stderr}")


@contextmanager
def local_server(bindir: Path, *, durable: bool = False) -> Iterator[str]:
    """Start a private cluster; yield the URL of its ``postgres`` database.

    Tests run with ``durable=False`` (no fsync: the data is thrown away); benchmarks pass
    True so a commit costs what it costs in production.
    """
    root = Path(tempfile.mkdtemp(prefix="beamish-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8"])
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
              str(root / "server.log"), "-w", "-t", "60", "start"])
        try:
            # No SSL on this cluster: say so, or asyncpg asks for it on every connection, and
            # a connection cancelled during that exchange (a test cancelling a store call while
            # the pool connects) leaves asyncpg a failed future nobody reads, which the loop's
            # exception handler reports and the anyio test runner raises.
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    main, sep, query = url.partition("?")
    return f"{main.rpartition('/')[0]}/{name}{sep}{query}"


class Cluster:
    """A private cluster a test may stop and start again (fault injection): ``url`` stays
    the same across restarts."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self._bindir = bindir
        self._data = root / "data"
        self._log = root / "server.log"
        sockets = root / "sock"
        port = _free_port()
        self._options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 "
                         "-c max_connections=200")  # durable: a stop must lose nothing
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _run([str(self._bindir / "pg_ctl"), "-D", str(self._data), "-o", self._options,
              "-l", str(self._log), "-w", "-t", "60", "start"])

    def stop(self) -> None:
        """Stop the server at once (``immediate``: connections are cut, as in a crash)."""
        _run([str(self._bindir / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w",
              "stop"])


@contextmanager
def stoppable_server(bindir: Path) -> Iterator[Cluster]:
    """A private cluster of its own (so stopping it disturbs no other test), started."""
    root = Path(tempfile.mkdtemp(prefix="beamish-pg-faults-"))
    (root / "sock").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "sock", "postgres")
    cluster = Cluster(bindir, root)
    try:
        _run([str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A",
              "trust", "--no-sync", "-E", "UTF8"])
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError):  # stopped already by the test
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
