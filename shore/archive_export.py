"""Export one table of a SQLite shore archive as CSV or JSON (``seabridge archive export``).

It owns the output formats: CSV with a header row, or one JSON array of objects, columns in table
order; BLOB values (keys, frames, sealed content) are written as base64 text in both. Rows are
streamed, so a table larger than memory exports in constant memory.

It opens the file read-only (a running relay keeps writing to it) and must not change the archive;
a PostgreSQL archive is exported with PostgreSQL's own tools.
"""

from __future__ import annotations

import base64
import csv
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

FORMATS = ("csv", "json")


class ExportError(ValueError):
    """The archive, table or format cannot be exported; the message says why."""


def _cell(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


def _rows(db: sqlite_utils.Database, table: str) -> Iterator[dict[str, Any]]:
    for row in db[table].rows:
        yield {name: _cell(value) for name, value in row.items()}


def _open(archive: Path) -> sqlite_utils.Database:
    if not archive.is_file():
        raise ExportError(f"no archive file {archive}")
    try:
        conn = sqlite3.connect(f"{archive.resolve().as_uri()}?mode=ro", uri=True)
        db = sqlite_utils.Database(conn)
        db.table_names()  # fails here if the file is not SQLite
    except sqlite3.DatabaseError as exc:
        raise ExportError(f"{archive} is not a SQLite archive ({exc})") from None
    return db


def table_names(archive: Path) -> list[str]:
    """The tables a SQLite archive holds, sorted."""
    db = _open(archive)
    try:
        return sorted(db.table_names())
    finally:
        db.close()


def export_table(archive: Path, table: str, fmt: str, out: TextIO) -> int:
    """Write every row of ``table`` in ``archive`` to ``out`` as ``fmt`` ("csv" or "json"); returns
    the number of rows written."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}")
    db = _open(archive)
    try:
        names = db.table_names()
        if table not in names:
            raise ExportError(f"no table {table!r}; the archive has: {', '.join(sorted(names))}")
        columns = [c.name for c in db[table].columns]
        count = 0
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for row in _rows(db, table):
                writer.writerow(row)
                count += 1
        else:
            out.write("[")
            for count, row in enumerate(_rows(db, table), 1):
                out.write(("\n" if count == 1 else ",\n") + json.dumps(row, ensure_ascii=False))
            out.write("\n]\n" if count else "]\n")
        return count
    finally:
        db.close()
