"""SQLite dedup state (``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite``).

WAL journal with ``synchronous=NORMAL``: a committed transaction survives a crash of the process
(it is in the WAL file), and commits cost no fsync. The WAL is copied back into the database
(a checkpoint, with its fsyncs) once it holds :data:`WAL_CHECKPOINT_PAGES` pages rather than
SQLite's default 1,000: every document touches ~14 B-tree pages at random places (hash keys), so
with the default nearly every commit checkpointed, writing each page twice; with a longer WAL a
page changed by several commits is copied back once (the dedup benchmark: commits cost 40% less
CPU). The WAL file is cut back to :data:`WAL_KEEP_BYTES` after a checkpoint. The page cache is
bounded (``GOVCRAWL_DEDUP_SQLITE_CACHE_KB``, default 8 MB), so memory stays flat however many
documents the state holds: everything, including the LSH buckets, is on disk in indexed tables.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from crawler.dedup.state import (
    DedupRecordError,
    DedupState,
    DedupStateError,
    DocRecord,
    UrlRecord,
    VersionRecord,
)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY, doc_id TEXT NOT NULL, version INTEGER NOT NULL, text_hash TEXT NOT NULL,
    etag TEXT, last_modified TEXT, last_seen TEXT, first_seen TEXT, fingerprint TEXT);
CREATE INDEX IF NOT EXISTS urls_by_text ON urls (fingerprint, first_seen);
CREATE INDEX IF NOT EXISTS urls_by_doc ON urls (doc_id, first_seen);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, version INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    text_hash TEXT NOT NULL, url TEXT NOT NULL, canonical_id TEXT, similarity REAL,
    signature BLOB, index_key TEXT, updated TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    doc_id TEXT NOT NULL, version INTEGER NOT NULL, text_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL, url TEXT NOT NULL, outcome TEXT NOT NULL, canonical_id TEXT,
    seen_at TEXT, PRIMARY KEY (doc_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identities (key TEXT PRIMARY KEY, doc_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (fingerprint TEXT PRIMARY KEY, doc_id TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    band INTEGER NOT NULL, key INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (band, key, doc)) WITHOUT ROWID;
"""
#: ``PRAGMA user_version`` of :data:`SCHEMA`. 1: docs, identities and owners are keyed tables
#: (``WITHOUT ROWID``: one B-tree each instead of a table and its key's index) and ``lsh_keys``
#: is gone (a document's band keys are recomputed from its signature). :func:`_migrate` brings
#: an older file up to date when it is opened.
SCHEMA_VERSION = 1
#: Tables that version 1 rebuilds as keyed tables, and tables it drops.
_REKEYED, _DROPPED = ("docs", "identities", "owners"), ("lsh_keys",)
#: Checkpoint once the WAL holds this many pages (40 MiB of 4 KiB pages; SQLite's default: 1,000).
WAL_CHECKPOINT_PAGES = 10_000
#: Size the WAL file is truncated to after a checkpoint.
WAL_KEEP_BYTES = 64 * 2**20
TABLES = ("urls", "docs", "versions", "identities", "owners", "buckets")


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: SQLiteDedupState, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def _doc_key(doc_id: str) -> bytes:
    """doc_ids are hex: store them as bytes in the big tables."""
    try:
        return bytes.fromhex(doc_id)
    except ValueError:
        return doc_id.encode("utf-8")


def _doc_id(key: bytes) -> str:
    return key.hex()


def _band_key(key: bytes) -> int:
    return int.from_bytes(key, "big", signed=True)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a state file written by an older release to :data:`SCHEMA_VERSION` (in one
    transaction: an interrupted migration leaves the old file as it was)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    tables = {name: sql for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
    if "docs" not in tables:
        return  # a new file
    wanted = {m.group(2): m.group(1) for m in re.finditer(
        r"(CREATE TABLE IF NOT EXISTS (\w+) .*?;)", SCHEMA, flags=re.S)}
    conn.execute("BEGIN")
    try:
        for table in _REKEYED:
            if table in tables and "WITHOUT ROWID" not in tables[table].upper():
                conn.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
                conn.execute(wanted[table])
                conn.execute(f"INSERT INTO {table} SELECT * FROM old_{table}")
                conn.execute(f"DROP TABLE old_{table}")
        for table in _DROPPED:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def sqlite_path(uri: str) -> str:
    """``sqlite:///rel`` -> ``rel``, ``sqlite:////abs`` -> ``/abs`` (the SQLAlchemy convention)."""
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URI (sqlite:///path): {uri!r}")
    path = uri[len("sqlite:///"):]
    if not path:
        raise ValueError(f"sqlite URI without a path: {uri!r}")
    return path


class SQLiteDedupState(DedupState):
    """:class:`DedupState` in one SQLite file, safe to share between threads of a process."""

    def __init__(self, path: str | os.PathLike[str], cache_kb: int = 8192):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.uri = self.cache_key(f"sqlite:///{self.path}")
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self.conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
            self.conn.execute(f"PRAGMA cache_size=-{int(cache_kb)}")
            _migrate(self.conn)
            self.conn.executescript(SCHEMA)
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise DedupStateError(
                f"dedup state {self.path} is not a usable SQLite database ({exc}); move it aside "
                "and rebuild it from the archive: govcrawl archive rebuild-state --archive URI "
                f"--state-dir {self.path.parent}") from None

    @classmethod
    def cache_key(cls, uri: str) -> str:
        return "sqlite:///" + os.path.abspath(sqlite_path(uri))

    @classmethod
    def from_uri(cls, uri: str, settings: Any = None) -> SQLiteDedupState:
        cache_kb = 8192
        if settings is not None and settings.get("GOVCRAWL_DEDUP_SQLITE_CACHE_KB"):
            cache_kb = int(settings.get("GOVCRAWL_DEDUP_SQLITE_CACHE_KB"))
        return cls(sqlite_path(uri), cache_kb=cache_kb)

    def _one(self, sql: str, args: tuple) -> tuple | None:
        return self.conn.execute(sql, args).fetchone()

    # URL records ----------------------------------------------------------------------------
    @_locked
    def _get_url(self, url: str) -> UrlRecord | None:
        row = self._one("SELECT url, doc_id, version, text_hash, etag, last_modified, last_seen, "
                        "first_seen, fingerprint FROM urls WHERE url = ?", (url,))
        return UrlRecord(*row) if row else None

    @_locked
    def _put_url(self, r: UrlRecord) -> None:
        self.conn.execute(
            "INSERT INTO urls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET "
            "doc_id=excluded.doc_id, version=excluded.version, text_hash=excluded.text_hash, "
            "etag=excluded.etag, last_modified=excluded.last_modified, "
            "last_seen=excluded.last_seen, fingerprint=excluded.fingerprint",
            (r.url, r.doc_id, r.version, r.text_hash, r.etag, r.last_modified, r.last_seen,
             r.first_seen or r.last_seen, r.fingerprint))

    @_locked
    def delete_url(self, url: str) -> None:
        self.conn.execute("DELETE FROM urls WHERE url = ?", (url,))

    @_locked
    def urls_with_text(self, fingerprint: str, limit: int = 100) -> list[str]:
        rows = self.conn.execute("SELECT url FROM urls WHERE fingerprint = ? "
                                 "ORDER BY first_seen, rowid LIMIT ?", (fingerprint, limit))
        return [r[0] for r in rows]

    @_locked
    def urls_for_doc(self, doc_id: str, limit: int = 100) -> list[str]:
        rows = self.conn.execute("SELECT url FROM urls WHERE doc_id = ? "
                                 "ORDER BY first_seen, rowid LIMIT ?", (doc_id, limit))
        return [r[0] for r in rows]

    # documents and versions -----------------------------------------------------------------
    @_locked
    def get_doc(self, doc_id: str) -> DocRecord | None:
        row = self._one("SELECT doc_id, version, fingerprint, text_hash, url, canonical_id, "
                        "similarity, signature, index_key, updated FROM docs WHERE doc_id = ?",
                        (doc_id,))
        return DocRecord(*row) if row else None

    @_locked
    def put_doc(self, r: DocRecord) -> None:
        self.conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (r.doc_id, r.version, r.fingerprint, r.text_hash, r.url, r.canonical_id,
                           r.similarity, r.signature, r.index_key, r.updated))

    @_locked
    def delete_doc(self, doc_id: str) -> None:
        self.conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))

    @_locked
    def add_version(self, r: VersionRecord) -> None:
        try:
            self.conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (r.doc_id, r.version, r.text_hash, r.fingerprint, r.url, r.outcome,
                               r.canonical_id, r.seen_at))
        except sqlite3.IntegrityError as exc:
            raise DedupRecordError(f"version {r.version} of {r.doc_id} exists already") from exc

    @_locked
    def versions(self, doc_id: str) -> list[VersionRecord]:
        rows = self.conn.execute(
            "SELECT doc_id, version, text_hash, fingerprint, url, outcome, canonical_id, seen_at "
            "FROM versions WHERE doc_id = ? ORDER BY version", (doc_id,))
        return [VersionRecord(*row) for row in rows]

    @_locked
    def delete_version(self, doc_id: str, version: int) -> None:
        self.conn.execute("DELETE FROM versions WHERE doc_id = ? AND version = ?",
                          (doc_id, version))

    # identities and owners --------------------------------------------------------------------
    @_locked
    def get_identity(self, key: str) -> str | None:
        row = self._one("SELECT doc_id FROM identities WHERE key = ?", (key,))
        return row[0] if row else None

    @_locked
    def put_identity(self, key: str, doc_id: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO identities VALUES (?, ?)", (key, doc_id))

    @_locked
    def delete_identity(self, key: str) -> None:
        self.conn.execute("DELETE FROM identities WHERE key = ?", (key,))

    @_locked
    def get_owner(self, fingerprint: str) -> str | None:
        row = self._one("SELECT doc_id FROM owners WHERE fingerprint = ?", (fingerprint,))
        return row[0] if row else None

    @_locked
    def put_owner(self, fingerprint: str, doc_id: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO owners VALUES (?, ?)", (fingerprint, doc_id))

    @_locked
    def delete_owner(self, fingerprint: str, doc_id: str) -> None:
        self.conn.execute("DELETE FROM owners WHERE fingerprint = ? AND doc_id = ?",
                          (fingerprint, doc_id))

    # LSH buckets ------------------------------------------------------------------------------
    @_locked
    def bucket_get(self, band: int, key: bytes) -> list[str]:
        rows = self.conn.execute("SELECT doc FROM buckets WHERE band = ? AND key = ?",
                                 (band, _band_key(key)))
        return [_doc_id(r[0]) for r in rows]

    @_locked
    def buckets_get(self, keys: Iterable[tuple[int, bytes]]) -> set[str]:
        pairs = [(band, _band_key(key)) for band, key in keys]
        if not pairs:
            return set()
        where = " OR ".join(["(band = ? AND key = ?)"] * len(pairs))
        rows = self.conn.execute(f"SELECT doc FROM buckets WHERE {where}",
                                 [v for pair in pairs for v in pair])
        return {_doc_id(r[0]) for r in rows}

    @_locked
    def buckets_add(self, keys: Iterable[tuple[int, bytes]], doc_id: str) -> None:
        doc = _doc_key(doc_id)
        self.conn.executemany("INSERT OR IGNORE INTO buckets VALUES (?, ?, ?)",
                              [(band, _band_key(key), doc) for band, key in keys])

    @_locked
    def bucket_add(self, band: int, key: bytes, doc_id: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO buckets VALUES (?, ?, ?)",
                          (band, _band_key(key), _doc_key(doc_id)))

    @_locked
    def buckets_remove(self, keys: Iterable[tuple[int, bytes]], doc_id: str) -> None:
        doc = _doc_key(doc_id)
        self.conn.executemany("DELETE FROM buckets WHERE band = ? AND key = ? AND doc = ?",
                              [(band, _band_key(key), doc) for band, key in keys])

    @_locked
    def bucket_remove(self, band: int, key: bytes, doc_id: str) -> None:
        self.conn.execute("DELETE FROM buckets WHERE band = ? AND key = ? AND doc = ?",
                          (band, _band_key(key), _doc_key(doc_id)))

    # housekeeping -----------------------------------------------------------------------------
    @_locked
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    @_locked
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @_locked
    def counts(self) -> dict[str, int]:
        return {t: self._one(f"SELECT COUNT(*) FROM {t}", ())[0] for t in TABLES}

    @_locked
    def clear(self) -> None:
        for table in (*TABLES, "meta"):
            self.conn.execute(f"DELETE FROM {table}")

    def iter_urls(self) -> Iterator[UrlRecord]:
        reader = sqlite3.connect(str(self.path), timeout=30)  # committed rows only
        try:
            yield from (UrlRecord(*row) for row in reader.execute(
                "SELECT url, doc_id, version, text_hash, etag, last_modified, last_seen, "
                "first_seen, fingerprint FROM urls"))
        finally:
            reader.close()

    def iter_versions(self) -> Iterator[VersionRecord]:
        reader = sqlite3.connect(str(self.path), timeout=30)
        try:
            yield from (VersionRecord(*row) for row in reader.execute(
                "SELECT doc_id, version, text_hash, fingerprint, url, outcome, canonical_id, "
                "seen_at FROM versions"))
        finally:
            reader.close()

    @_locked
    def commit(self) -> None:
        if not self.closed:
            self.conn.commit()

    @_locked
    def rollback(self) -> None:
        if not self.closed:
            self.conn.rollback()

    @_locked
    def _close(self) -> None:
        self.conn.close()
