"""Which migrations to run: the sans-I/O half of the migration runner.

Migrations are the files ``beamish/migrations/<dialect>/NNNN_name.sql``, applied in version
order. Each applied migration is recorded in ``schema_migrations`` with the SHA-256 of its file,
so an edited file is caught on the next start (``MigrationChecksumError``) instead of leaving
two databases with different schemas under the same version. The backends do the I/O: take the
lock, read ``schema_migrations``, call ``pending()``, run what it returns in a transaction.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from beamish.store.errors import MigrationChecksumError, MigrationError, UnknownMigrationError

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""
"""The bookkeeping table; the same text works on both dialects."""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file."""

    version: int
    name: str
    sql: str
    checksum: str


def parse(file_name: str, data: bytes) -> Migration:
    """Build a migration from its file name and bytes; the checksum covers the exact bytes."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise MigrationError(
            f"migration file {file_name!r} is not named NNNN_lowercase_name.sql; rename it"
        )
    return Migration(
        version=int(match.group(1)),
        name=match.group(2),
        sql=data.decode("utf-8"),
        checksum=hashlib.sha256(data).hexdigest(),
    )


def shipped(dialect: str) -> tuple[Migration, ...]:
    """The migrations this package ships for ``dialect`` (``sqlite`` or ``postgres``)."""
    folder = resources.files("beamish.migrations").joinpath(dialect)
    found = [parse(f.name, f.read_bytes()) for f in folder.iterdir() if f.name.endswith(".sql")]
    return ordered(found)


def ordered(migrations: Iterable[Migration]) -> tuple[Migration, ...]:
    """Sort by version, refusing two files with the same version."""
    result = tuple(sorted(migrations, key=lambda m: m.version))
    for before, after in itertools.pairwise(result):
        if before.version == after.version:
            raise MigrationError(
                f"two migrations have version {before.version:04d} ({before.name}, "
                f"{after.name}); give one of them the next free number"
            )
    return result


def pending(available: Iterable[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations still to run, given ``applied`` (version → recorded checksum).

    Raises:
        MigrationChecksumError: an applied migration's file has changed.
        UnknownMigrationError: the database has a version that is not shipped.
    """
    by_version = {m.version: m for m in available}
    for version, checksum in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise UnknownMigrationError(version)
        if migration.checksum != checksum:
            raise MigrationChecksumError(version, migration.name, checksum, migration.checksum)
    return [m for v, m in sorted(by_version.items()) if v not in applied]
