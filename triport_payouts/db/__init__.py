"""The storage layer: the interface every dialect implements (``base.py``),
SQLite (``sqlite.py``), PostgreSQL (``postgres.py``, the ``postgres`` extra),
their schema files (``sql/``), and opening the database a
``TRIPORT_DATABASE`` value names.
"""

from __future__ import annotations

from .base import SCHEMA_TABLES, Database, DatabaseUnavailable, StorageFull, first_line

__all__ = ["SCHEMA_TABLES", "Database", "DatabaseUnavailable", "StorageFull", "first_line", "open_database"]


def open_database(url: str) -> Database:
    """The database a ``TRIPORT_DATABASE`` value names: a SQLite path,
    ``sqlite:///PATH``, or ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url)
    from .sqlite import SQLiteDatabase

    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    return SQLiteDatabase(url)
