"""The storage layer: the interface every dialect implements (``base.py``),
SQLite (``sqlite.py``), PostgreSQL (``postgres.py``, the ``postgres`` extra),
the schema's versions (``migrations.py``, ``sql/<dialect>/NNNN_*.sql``), and
opening the database a
``TRIPORT_DATABASE`` value names.
"""

from __future__ import annotations

from .base import (
    SCHEMA_TABLES,
    Database,
    DatabaseUnavailable,
    NoSchema,
    SchemaOutdated,
    SchemaTooNew,
    StorageFull,
    first_line,
    require_version,
)
from .migrations import SCHEMA_VERSION

__all__ = [
    "SCHEMA_TABLES", "SCHEMA_VERSION", "Database", "DatabaseUnavailable", "DatabaseUrlError",
    "InvalidDatabaseUrl", "NoSchema", "PostgresExtraMissing", "SchemaOutdated", "SchemaTooNew",
    "StorageFull", "first_line", "open_database", "require_version",
]

INSTALL_POSTGRES = "pip install 'triport-payouts[postgres]'"


class DatabaseUrlError(Exception):
    """the database named cannot be used as given: a usage error"""


class PostgresExtraMissing(DatabaseUrlError):
    """a postgresql:// database needs psycopg, which cannot be imported"""


class InvalidDatabaseUrl(DatabaseUrlError):
    """the postgresql:// URL cannot be parsed (it is not repeated here: it may hold a password)"""


def open_database(url: str) -> Database:
    """The database a ``TRIPORT_DATABASE`` value names: a SQLite path,
    ``sqlite:///PATH``, or ``postgresql://...``. Opens no connection; raises
    PostgresExtraMissing for PostgreSQL without its driver, InvalidDatabaseUrl
    for a URL it cannot parse (both DatabaseUrlError)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # here, so that an ImportError of ours is not taken for it
        except ImportError as exc:
            # Not installed, or installed without a libpq it can use: the extra brings both.
            raise PostgresExtraMissing(
                f"{PostgresExtraMissing.__doc__} ({first_line(exc)}): {INSTALL_POSTGRES}"
            ) from None
        from .postgres import PostgresDatabase

        try:
            return PostgresDatabase(url)
        except psycopg.Error:
            raise InvalidDatabaseUrl(InvalidDatabaseUrl.__doc__) from None
    from .sqlite import SQLiteDatabase

    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    return SQLiteDatabase(url)
