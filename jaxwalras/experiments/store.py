"""Durable results: an SQLite store per process, exported atomically to ``results.csv``.

Why SQLite: a batch's rows are committed in ONE transaction (rollback journal,
``synchronous=FULL``), so a process killed at any moment -- SIGINT, SIGKILL, power loss
-- leaves every batch either fully committed or absent, never half; the primary key
``(grid point, seed)`` makes a duplicate row impossible; it is in Python's standard library
(no dependency) and needs no server.  The CSV that users read is re-exported from the
store after every batch by writing a temporary file in the same folder and renaming it
over ``results.csv`` (``os.replace`` is atomic on POSIX and Windows), so the CSV is always
a complete table of committed rows, sorted by grid point and seed.

Rows are stored as JSON objects (column -> value), so a study may add columns freely;
Python's ``json`` writes floats with ``repr``, which round-trips every float64 exactly.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pathlib
import sqlite3
import tempfile
import time
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["ResultStore", "export_csv", "read_results", "atomic_write_bytes", "format_cell"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    point_key TEXT NOT NULL, seed INTEGER NOT NULL, point INTEGER NOT NULL,
    attempt INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (point_key, seed));
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, attempt INTEGER NOT NULL, process INTEGER NOT NULL,
    point INTEGER NOT NULL, seeds TEXT NOT NULL, markets INTEGER NOT NULL,
    seconds REAL NOT NULL, finished REAL NOT NULL);
"""


class ResultStore:
    """One SQLite results store (``results.sqlite`` or a process's part).

    Parameters
    ----------
    path : str
        The database file.
    create : bool
        Create the file and tables if missing.  Otherwise the file must exist; it is
        opened without creating anything (read-write, so that SQLite can roll back the
        journal of a transaction that a killed process left behind).
    """

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.path = path
        if create:
            self.db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        else:
            uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=rw"
            self.db = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        if create:
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:          # an empty / foreign file
            return None
        return None if row is None else json.loads(row[0])

    def set_meta(self, **items: Any) -> None:
        with self.transaction() as db:
            for key, val in items.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(val)))

    # -- rows ---------------------------------------------------------------------------
    def count(self) -> int:
        try:
            return int(self.db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def done(self) -> set[tuple[str, int]]:
        """The committed ``(point_key, seed)`` pairs."""
        try:
            return {(k, int(s)) for k, s in self.db.execute("SELECT point_key, seed FROM rows")}
        except sqlite3.OperationalError:
            return set()

    def commit(self, rows: Sequence[tuple[str, int, int, Mapping[str, Any]]], *, attempt: int,
               process: int, point: int, seconds: float) -> None:
        """Insert one batch's rows ``(point_key, seed, point, data)`` and its log entry in
        one transaction (all or nothing)."""
        with self.transaction() as db:
            db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
                           [(k, int(s), int(p), int(attempt), json.dumps(dict(d)))
                            for k, s, p, d in rows])
            db.execute("INSERT INTO batches (attempt, process, point, seeds, markets, seconds,"
                       " finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (int(attempt), int(process), int(point),
                        json.dumps([int(r[1]) for r in rows]), len(rows), float(seconds),
                        time.time()))

    def raw_rows(self) -> list[tuple[str, int, int, int, str]]:
        """``(point_key, seed, point, attempt, data-json)`` of every committed row."""
        try:
            return list(self.db.execute(
                "SELECT point_key, seed, point, attempt, data FROM rows ORDER BY point, seed"))
        except sqlite3.OperationalError:
            return []

    def insert_raw(self, raw: Iterable[tuple[str, int, int, int, str]]) -> int:
        """Merge rows from another store (existing keys are kept); returns rows added."""
        with self.transaction() as db:
            before = db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
            db.executemany("INSERT OR IGNORE INTO rows VALUES (?, ?, ?, ?, ?)", list(raw))
            return int(db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] - before)

    def batches(self) -> list[dict]:
        try:
            cur = self.db.execute("SELECT attempt, process, point, seeds, markets, seconds, "
                                  "finished FROM batches ORDER BY id")
        except sqlite3.OperationalError:
            return []
        keys = ("attempt", "process", "point", "seeds", "markets", "seconds", "finished")
        return [dict(zip(keys, r)) for r in cur]


def format_cell(v: Any) -> str:
    """One CSV cell: floats with ``repr`` (exact round trip), booleans as True/False."""
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync'd, then
    renamed over ``path`` (readers see the old file or the new one, never a part)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def export_csv(rows: Sequence[Mapping[str, Any]], path: str) -> list[str]:
    """Write ``rows`` (dicts) to the CSV ``path`` atomically; returns the header.

    Columns are the union of the rows' keys in order of first appearance; a row without
    a column leaves its cell empty.
    """
    header = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([format_cell(r.get(k)) for k in header])
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return header


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_results(path: Any) -> list[dict]:
    """The rows of a results folder's ``results.csv`` (or of a CSV file) as dicts, with
    numbers and booleans parsed back (floats exactly, as written).

    Raises
    ------
    ValueError
        No such file.

    Examples
    --------
    >>> import os, tempfile
    >>> from jaxwalras.experiments import read_results
    >>> from jaxwalras.experiments.store import export_csv
    >>> d = tempfile.mkdtemp()
    >>> _ = export_csv([{"n": 10, "x": 0.1, "ok": True}], os.path.join(d, "results.csv"))
    >>> read_results(d)
    [{'n': 10, 'x': 0.1, 'ok': True}]
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "results.csv")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return [{k: _parse_cell(v) for k, v in r.items()} for r in reader]
    except FileNotFoundError:
        raise ValueError(f"{path}: no such results file") from None
