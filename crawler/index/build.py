"""Build or update the SQLite index of an archive from its crawl manifests (sqlite-utils).

Incremental: the index remembers, per crawl, how many bytes and lines of ``manifest.jsonl`` it has
read (a manifest only grows), so a run reads only manifests that are new or have grown, and only
their new lines. Document objects (``meta.json``, ``text``) are read for the lines that stored
them. Tables:

``documents``       one row per document: its latest version's metadata, text and attachment text
``versions``        every stored version (text, title, fetch time, raw capture location)
``aliases``         duplicate URLs pointing to their canonical document
``near_duplicates`` near-duplicate documents and the document they resemble
``attachments``     one row per attachment content (sha256), with its text when archived
``attachment_refs`` where each attachment was linked from (url, name, page)
``doc_attachments`` the attachments a document's latest version lists (url, name)
``findings``        page-level flags per document version
``crawls``          crawl reports; ``_manifests`` the bookkeeping of what was read
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from crawler.archive import layout
from crawler.archive.archive import Archive
from crawler.index import bigrams

SCHEMA_VERSION = 1
DOC_OUTCOMES = ("new", "changed", "near_duplicate")
#: Archive key of an attachment's extracted text (written by the attachment text extraction).
ATTACHMENT_TEXT = "text"
ATTACHMENT_TEXT_META = "text.json"
FTS_COLUMNS = ["title", "text", "attachment_text"]
#: A document's links to stored attachments (``d``: doc_attachments, ``a``: attachments): by the
#: sha256 its meta.json records, else (older archives) by URL through attachment_refs (``r``).
LINKED_ATTACHMENTS = """doc_attachments d
        LEFT JOIN attachment_refs r ON d.sha256 IS NULL AND r.url = d.url
        LEFT JOIN attachments a ON a.sha256 = coalesce(d.sha256, r.sha256)"""
LINKED_SHA = "coalesce(d.sha256, r.sha256)"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class IndexDbError(Exception):
    """The index database cannot be used (another archive's index, a newer schema)."""


@dataclass
class IndexStats:
    crawls_read: int = 0
    crawls_skipped: int = 0
    lines: int = 0
    versions: int = 0
    aliases: int = 0
    attachments: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.crawls_read} new or grown manifests read "
                f"({self.crawls_skipped} unchanged), "
                f"{self.lines} lines: {self.versions} document versions, {self.aliases} aliases, "
                f"{self.attachments} attachments in {self.seconds:.1f}s")


def open_index(db_path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the index database with its tables, indexes and FTS."""
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    # the bigram index's triggers call it: every connection that writes documents has it
    db.conn.create_function(bigrams.FUNCTION, len(FTS_COLUMNS), bigrams.cjk_bigrams,
                            deterministic=True)
    _create_schema(db)
    return db


def _create_schema(db: sqlite_utils.Database) -> None:
    tables = {
        "_meta": ({"key": str, "value": str}, "key"),
        "_manifests": ({"crawl_id": str, "bytes": int, "lines": int, "report_bytes": int},
                       "crawl_id"),
        "documents": ({
            "doc_id": str, "site": str, "url": str, "final_url": str, "title": str,
            "published": str, "year": int, "written": str, "source": str, "publisher": str,
            "index_no": str, "doc_no": str, "topic": str, "version": int, "versions": int,
            "crawl_id": str, "first_fetched": str, "fetched_at": str, "last_seen": str,
            "attachment_count": int, "has_attachments": int, "has_findings": int,
            "canonical_id": str, "similarity": float, "outcome": str, "text_key": str,
            "meta_key": str, "findings": str, "removed": str, "spam_removed": str,
            "page_meta": str,
            # the long columns last: facets and filters read rows without their overflow pages
            "text": str, "attachment_text": str,
        }, "doc_id"),
        "versions": ({
            "doc_id": str, "version": int, "site": str, "crawl_id": str, "fetched_at": str,
            "title": str, "published": str, "url": str, "final_url": str, "outcome": str,
            "text": str, "text_hash": str, "pages": str, "text_key": str, "meta_key": str,
        }, ("doc_id", "version")),
        "aliases": ({
            "url": str, "final_url": str, "site": str, "doc_id": str, "canonical_id": str,
            "crawl_id": str, "fetched_at": str, "title": str,
        }, ("url", "canonical_id")),
        "near_duplicates": ({"doc_id": str, "version": int, "canonical_id": str,
                             "similarity": float}, ("doc_id", "version")),
        "attachments": ({
            "sha256": str, "bytes": int, "content_type": str, "name": str, "url": str,
            "first_crawl": str, "body_key": str, "text": str, "text_meta": str,
        }, "sha256"),
        "attachment_refs": ({
            "sha256": str, "url": str, "final_url": str, "name": str, "found_on": str,
            "crawl_id": str, "fetched_at": str,
        }, ("sha256", "url", "found_on")),
        # sha256: of the stored body, as meta.json records it (None in older archives: joined
        # through attachment_refs by URL, which misses a link the spider had to canonicalise)
        "doc_attachments": ({"doc_id": str, "position": int, "url": str, "name": str,
                             "sha256": str}, ("doc_id", "position")),
        "findings": ({"doc_id": str, "version": int, "finding": str},
                     ("doc_id", "version", "finding")),
        "crawls": ({
            "crawl_id": str, "site": str, "started": str, "finished": str,
            "finish_reason": str, "pages_fetched": int, "new": int, "changed": int,
            "duplicate": int, "near_duplicate": int, "unchanged": int, "attachments": int,
            "spam_removed": int, "not_found": int, "errors": int, "errors_by_kind": str,
            "bytes_stored": int, "duration_s": float, "report": str,
        }, "crawl_id"),
    }
    for name, (columns, pk) in tables.items():
        db[name].create(columns, pk=pk, if_not_exists=True)
    if "sha256" not in db["doc_attachments"].columns_dict:  # an index built before the column
        db["doc_attachments"].add_column("sha256", str)
    for table, columns in [
        ("documents", ["site"]), ("documents", ["year"]), ("documents", ["publisher"]),
        ("documents", ["topic"]), ("documents", ["published"]), ("documents", ["has_attachments"]),
        ("documents", ["has_findings"]), ("versions", ["crawl_id"]),
        ("aliases", ["canonical_id"]), ("near_duplicates", ["canonical_id"]),
        ("attachment_refs", ["url"]), ("doc_attachments", ["url"]),
        ("doc_attachments", ["sha256"]), ("crawls", ["site"]),
    ]:
        db[table].create_index(columns, if_not_exists=True)
    if not db["documents_fts"].exists():
        db["documents"].enable_fts(FTS_COLUMNS, tokenize="trigram", create_triggers=True)
        # re-index a row only when a searched column changes (not for last_seen, counts...)
        columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
        changed = " OR ".join(f'old."{c}" IS NOT new."{c}"' for c in FTS_COLUMNS)
        db.execute('DROP TRIGGER "documents_au"')
        db.execute(f'''CREATE TRIGGER "documents_au" AFTER UPDATE OF {columns} ON "documents"
            WHEN {changed} BEGIN
              INSERT INTO "documents_fts" ("documents_fts", rowid, {columns})
                VALUES ('delete', old.rowid, {", ".join(f'old."{c}"' for c in FTS_COLUMNS)});
              INSERT INTO "documents_fts" (rowid, {columns})
                VALUES (new.rowid, {", ".join(f'new."{c}"' for c in FTS_COLUMNS)});
            END''')
    if not db[bigrams.TABLE].exists():
        _create_bigram_index(db)
    db.create_view("document_attachments", f"""
        SELECT d.doc_id, d.position, d.url, d.name, {LINKED_SHA} AS sha256, a.bytes,
               a.content_type, a.text IS NOT NULL AS has_text
        FROM {LINKED_ATTACHMENTS}
        GROUP BY d.doc_id, d.position""", replace=True)
    db["_meta"].upsert({"key": "schema", "value": str(SCHEMA_VERSION)}, pk="key")


def _create_bigram_index(db: sqlite_utils.Database) -> None:
    """The two-character word index (see crawler.index.bigrams), kept by triggers; an index
    built before it existed gets it filled from its documents here."""
    table, function = bigrams.TABLE, bigrams.FUNCTION
    old = ", ".join(f'old."{c}"' for c in FTS_COLUMNS)
    new = ", ".join(f'new."{c}"' for c in FTS_COLUMNS)
    changed = " OR ".join(f'old."{c}" IS NOT new."{c}"' for c in FTS_COLUMNS)
    columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    db.execute(f'CREATE VIRTUAL TABLE "{table}" USING fts5(pairs, content=\'\', '
               "detail=none, tokenize='unicode61')")
    db.execute(f'''CREATE TRIGGER "{table}_ai" AFTER INSERT ON "documents" BEGIN
          INSERT INTO "{table}" (rowid, pairs) VALUES (new.rowid, {function}({new}));
        END''')
    db.execute(f'''CREATE TRIGGER "{table}_ad" AFTER DELETE ON "documents" BEGIN
          INSERT INTO "{table}" ("{table}", rowid, pairs)
            VALUES ('delete', old.rowid, {function}({old}));
        END''')
    db.execute(f'''CREATE TRIGGER "{table}_au" AFTER UPDATE OF {columns} ON "documents"
        WHEN {changed} BEGIN
          INSERT INTO "{table}" ("{table}", rowid, pairs)
            VALUES ('delete', old.rowid, {function}({old}));
          INSERT INTO "{table}" (rowid, pairs) VALUES (new.rowid, {function}({new}));
        END''')
    db.execute(f'INSERT INTO "{table}" (rowid, pairs) '
               f'SELECT rowid, {function}({columns}) FROM "documents"')


def _bind(db: sqlite_utils.Database, uri: str) -> None:
    """An index belongs to one archive: refuse to mix two archives in one database."""
    row = next(db.query("SELECT value FROM _meta WHERE key = 'archive'"), None)
    if row is None:
        db["_meta"].upsert({"key": "archive", "value": uri}, pk="key")
    elif row["value"] != uri:
        raise IndexDbError(f"the index holds archive {row['value']}, not {uri} "
                          "(use another --db for this archive)")


def index_archive_uri(db: sqlite_utils.Database) -> str | None:
    row = next(db.query("SELECT value FROM _meta WHERE key = 'archive'"), None)
    return row["value"] if row else None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _year(published: str | None) -> int | None:
    m = re.match(r"(\d{4})-", published or "")
    return int(m.group(1)) if m else None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class _Builder:
    def __init__(self, archive: Archive, db: sqlite_utils.Database, stats: IndexStats):
        self.archive, self.db, self.stats = archive, db, stats
        self.touched_docs: set[str] = set()
        self.pending: dict[str, list[dict[str, Any]]] = {
            "versions": [], "findings": [], "near_duplicates": []}
        self.pending_docs: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    # -- manifests -------------------------------------------------------------------------
    def crawl(self, crawl_id: str) -> None:
        key = layout.manifest_key(crawl_id)
        info = self.archive.store.head(key)  # retried by the store's client (one retry layer)
        report_info = self.archive.store.head(layout.report_key(crawl_id))
        size = info.size if info else 0
        report_size = report_info.size if report_info else 0
        done = self.db["_manifests"].get(crawl_id) if self._has(crawl_id) else None
        if done and done["bytes"] == size and done["report_bytes"] == report_size:
            self.stats.crawls_skipped += 1
            return
        self.stats.crawls_read += 1
        lines = done["lines"] if done else 0
        if not done or done["bytes"] != size:
            entries = self.archive.manifest(crawl_id)
            for n, entry in enumerate(entries[lines:], 1):
                self.entry(entry)
                if n % 2000 == 0:
                    self.flush()
            self.flush()
            lines = len(entries)
        if report_size:
            self.report(crawl_id)
        self.db["_manifests"].upsert({"crawl_id": crawl_id, "bytes": size, "lines": lines,
                                      "report_bytes": report_size}, pk="crawl_id")

    def _has(self, crawl_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM _manifests WHERE crawl_id = ?",
                               [crawl_id]).fetchone() is not None

    def entry(self, entry: dict[str, Any]) -> None:
        self.stats.lines += 1
        kind, outcome = entry.get("kind"), entry.get("outcome")
        if kind == "attachment":
            self.attachment(entry)
        elif kind == "warc":
            return
        elif outcome in DOC_OUTCOMES and entry.get("doc_id") is not None:
            self.version(entry)
        elif outcome == "duplicate" and entry.get("canonical_id"):
            self.alias(entry)
        elif outcome == "unchanged" and entry.get("doc_id") in self.pending_docs:
            row = self.pending_docs[entry["doc_id"]][0]
            row["last_seen"] = max(row["last_seen"] or "", entry.get("fetched_at") or "")
        elif outcome == "unchanged" and entry.get("doc_id"):
            self.db.execute("UPDATE documents SET last_seen = max(coalesce(last_seen, ''), ?) "
                            "WHERE doc_id = ?", [entry.get("fetched_at") or "", entry["doc_id"]])
        for obj in entry.get("objects") or []:  # attachment text archived by a later pass
            key = obj.get("key") or ""
            parts = key.split("/")
            if parts[0] == layout.ATTACHMENTS and parts[-1] == ATTACHMENT_TEXT and len(parts) == 4:
                self.attachment_text(parts[2])

    # -- documents -------------------------------------------------------------------------
    def version(self, entry: dict[str, Any]) -> None:
        site, doc_id, version = entry.get("site") or "", entry["doc_id"], int(entry["version"])
        text_key, meta_key = layout.doc_keys(site, doc_id, version)
        for obj in entry.get("objects") or []:
            key = obj.get("key") or ""
            if key.endswith("/meta.json"):
                meta_key = key
            elif key.endswith("/text"):
                text_key = key
        try:
            meta = self.archive.get_json(meta_key)
            text = self.archive.get(text_key).decode("utf-8", "replace")
        except KeyError:  # listed but not (yet) in the store, e.g. still spooled
            return
        self.stats.versions += 1
        dedup = meta.get("dedup") or {}
        findings = [str(f) for f in meta.get("findings") or []]
        attachments = meta.get("attachments") or []
        fetched = meta.get("fetched_at") or entry.get("fetched_at")
        crawl_id = meta.get("crawl_id") or entry.get("crawl_id")
        outcome = dedup.get("outcome") or entry.get("outcome")
        self.pending["versions"].append({
            "doc_id": doc_id, "version": version, "site": site, "crawl_id": crawl_id,
            "fetched_at": fetched, "title": meta.get("title"), "published": meta.get("published"),
            "url": meta.get("url"), "final_url": meta.get("final_url"), "outcome": outcome,
            "text": text, "text_hash": (meta.get("hashes") or {}).get("text_hash"),
            "pages": _dump(meta.get("pages") or []), "text_key": text_key, "meta_key": meta_key,
        })
        self.pending["findings"] += [{"doc_id": doc_id, "version": version, "finding": f}
                                     for f in findings]
        canonical = meta.get("canonical_id")
        if canonical:
            self.pending["near_duplicates"].append(
                {"doc_id": doc_id, "version": version, "canonical_id": canonical,
                 "similarity": dedup.get("similarity")})
        held = self.pending_docs.get(doc_id)
        if held and held[0]["version"] > version:
            return
        published = meta.get("published")
        row = {
            "doc_id": doc_id, "site": site, "url": meta.get("url"),
            "final_url": meta.get("final_url"), "title": meta.get("title"),
            "published": published, "year": _year(published), "written": meta.get("written"),
            "source": meta.get("source"), "publisher": meta.get("publisher"),
            "index_no": meta.get("index_no"), "doc_no": meta.get("doc_no"),
            "topic": meta.get("topic"), "version": version, "crawl_id": crawl_id,
            "first_fetched": fetched, "fetched_at": fetched, "last_seen": fetched, "text": text,
            "attachment_count": len(attachments), "has_attachments": int(bool(attachments)),
            "has_findings": int(bool(findings)), "findings": _dump(findings),
            "spam_removed": _dump(meta.get("spam_removed") or []),
            "removed": _dump(meta.get("removed") or {}),
            "page_meta": _dump(meta.get("page_meta") or {}), "canonical_id": canonical,
            "similarity": dedup.get("similarity"), "outcome": outcome,
            "text_key": text_key, "meta_key": meta_key,
        }
        links = [{"doc_id": doc_id, "position": i, "url": a.get("url"), "name": a.get("name"),
                  "sha256": a.get("sha256") if _SHA256.match(str(a.get("sha256"))) else None}
                 for i, a in enumerate(attachments)]
        self.pending_docs[doc_id] = (row, links)

    def flush(self) -> None:
        """Write what the lines read so far produced, in batches (one statement per table)."""
        for table, pk in (("versions", ("doc_id", "version")),
                          ("findings", ("doc_id", "version", "finding")),
                          ("near_duplicates", ("doc_id", "version"))):
            if self.pending[table]:
                self.db[table].upsert_all(self.pending[table], pk=pk)
            self.pending[table] = []
        rows, links = [], []
        for doc_id, (row, doc_links) in self.pending_docs.items():
            current = self.db.execute("SELECT version, first_fetched FROM documents "
                                      "WHERE doc_id = ?", [doc_id]).fetchone()
            count = self.db.execute("SELECT count(*) FROM versions WHERE doc_id = ?",
                                    [doc_id]).fetchone()[0]
            first = min(filter(None, [row["first_fetched"], current[1] if current else None]),
                        default=None)
            if current and current[0] > row["version"]:  # an older version read late
                self.db.execute("UPDATE documents SET versions = ?, first_fetched = ? "
                                "WHERE doc_id = ?", [count, first, doc_id])
                continue
            rows.append({**row, "versions": count, "first_fetched": first})
            links += doc_links
            self.touched_docs.add(doc_id)
        if rows:
            self.db["documents"].upsert_all(rows, pk="doc_id")
            ids = [r["doc_id"] for r in rows]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                self.db.execute(f"DELETE FROM doc_attachments WHERE doc_id IN "
                                f"({','.join('?' * len(part))})", part)
        if links:
            self.db["doc_attachments"].insert_all(links, pk=("doc_id", "position"))
        self.pending_docs = {}

    def alias(self, entry: dict[str, Any]) -> None:
        self.stats.aliases += 1
        self.db["aliases"].upsert({
            "url": entry.get("url"), "final_url": entry.get("final_url"),
            "site": entry.get("site"), "doc_id": entry.get("doc_id"),
            "canonical_id": entry["canonical_id"], "crawl_id": entry.get("crawl_id"),
            "fetched_at": entry.get("fetched_at"), "title": entry.get("title"),
        }, pk=("url", "canonical_id"))

    # -- attachments -----------------------------------------------------------------------
    def attachment(self, entry: dict[str, Any]) -> None:
        sha = str(entry.get("sha256") or "")
        if not _SHA256.match(sha):
            return
        self.stats.attachments += 1
        size, content_type = None, None
        for obj in entry.get("objects") or []:
            if (obj.get("key") or "").endswith("/body"):
                size = obj.get("bytes")
            elif "/refs/" in (obj.get("key") or "") and obj.get("written") is not False:
                try:
                    ref = self.archive.get_json(obj["key"])
                    content_type = ref.get("content_type")
                    size = ref.get("bytes", size)
                except KeyError:
                    pass
        self.db["attachment_refs"].upsert({
            "sha256": sha, "url": entry.get("url"), "final_url": entry.get("final_url"),
            "name": entry.get("name"), "found_on": entry.get("found_on"),
            "crawl_id": entry.get("crawl_id"), "fetched_at": entry.get("fetched_at"),
        }, pk=("sha256", "url", "found_on"))
        known = self.db.execute("SELECT 1 FROM attachments WHERE sha256 = ?", [sha]).fetchone()
        if known:
            return
        self.db["attachments"].insert({
            "sha256": sha, "bytes": size, "content_type": content_type,
            "name": entry.get("name"), "url": entry.get("final_url") or entry.get("url"),
            "first_crawl": entry.get("crawl_id"), "body_key": layout.attachment_body_key(sha),
        }, pk="sha256")
        self.attachment_text(sha)

    def attachment_text(self, sha: str) -> None:
        """Store the attachment's archived text (``attachments/<sha[:2]>/<sha>/text``), if any."""
        if not _SHA256.match(sha):
            return
        base = layout.attachment_body_key(sha).rsplit("/", 1)[0]
        try:
            text = self.archive.get(f"{base}/{ATTACHMENT_TEXT}").decode("utf-8", "replace")
        except KeyError:
            return
        try:
            text_meta = _dump(self.archive.get_json(f"{base}/{ATTACHMENT_TEXT_META}"))
        except (KeyError, ValueError):
            text_meta = None
        self.db.execute("UPDATE attachments SET text = ?, text_meta = ? WHERE sha256 = ?",
                        [text, text_meta, sha])
        for (doc_id,) in self.db.execute(
                f"SELECT DISTINCT d.doc_id FROM {LINKED_ATTACHMENTS} WHERE a.sha256 = ?",
                [sha]).fetchall():
            self.touched_docs.add(doc_id)

    def link_by_fetched_url(self) -> None:
        """Links without a recorded sha256 (archives from before meta.json had it): the
        attachment fetched at the link's canonical URL (a Chinese file name is fetched
        percent-encoded), so that its text reaches the document."""
        from contextlib import suppress

        from crawler.urls import canonicalize

        for doc_id, position, url in self.db.execute(
                "SELECT doc_id, position, url FROM doc_attachments WHERE sha256 IS NULL "
                "AND url IS NOT NULL").fetchall():
            with suppress(ValueError):
                fetched = canonicalize(url)
                if fetched == url:
                    continue
                row = self.db.execute("SELECT sha256 FROM attachment_refs WHERE url = ? "
                                      "LIMIT 1", [fetched]).fetchone()
                if row:
                    self.db.execute("UPDATE doc_attachments SET sha256 = ? WHERE doc_id = ? "
                                    "AND position = ?", [row[0], doc_id, position])
                    self.touched_docs.add(doc_id)

    def finish(self) -> None:
        """Refresh the searchable attachment text of documents whose attachments changed."""
        self.link_by_fetched_url()
        # attachments fetched in this run link to documents by URL
        for (doc_id,) in self.db.execute(
                f"SELECT DISTINCT d.doc_id FROM {LINKED_ATTACHMENTS} "
                "WHERE a.text IS NOT NULL AND d.doc_id IN (SELECT doc_id FROM documents "
                "WHERE attachment_text IS NULL AND has_attachments = 1)").fetchall():
            self.touched_docs.add(doc_id)
        for doc_id in self._with_attachments(self.touched_docs):
            texts = [row[0] for row in self.db.execute(
                f"SELECT a.text FROM {LINKED_ATTACHMENTS} WHERE d.doc_id = ? "
                "AND a.text IS NOT NULL GROUP BY a.sha256 ORDER BY min(d.position)", [doc_id])]
            self.db.execute("UPDATE documents SET attachment_text = ? WHERE doc_id = ?",
                            ["\n\n".join(texts) if texts else None, doc_id])

    def _with_attachments(self, doc_ids: set[str]) -> list[str]:
        ids, found = sorted(doc_ids), []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            found += [r[0] for r in self.db.execute(
                f"SELECT doc_id FROM documents WHERE has_attachments = 1 AND doc_id IN "
                f"({','.join('?' * len(part))})", part)]
        return found

    # -- crawl reports ---------------------------------------------------------------------
    def report(self, crawl_id: str) -> None:
        try:
            report = self.archive.get_json(layout.report_key(crawl_id))
        except (KeyError, ValueError):
            return
        docs = report.get("documents") or {}
        errors = report.get("errors") or {}
        self.db["crawls"].upsert({
            "crawl_id": crawl_id, "site": report.get("site"), "started": report.get("started"),
            "finished": report.get("finished"), "finish_reason": report.get("finish_reason"),
            "pages_fetched": _int(report.get("pages_fetched")),
            **{k: _int(docs.get(k)) for k in ("new", "changed", "duplicate", "near_duplicate",
                                              "unchanged")},
            "attachments": _int(report.get("attachments")),
            "spam_removed": _int(report.get("spam_removed")),
            "not_found": _int(report.get("not_found")),
            "errors": sum(_int(v) for v in errors.values()) if isinstance(errors, dict) else 0,
            "errors_by_kind": _dump(errors), "bytes_stored": _int(report.get("bytes_stored")),
            "duration_s": report.get("duration_s"), "report": _dump(report),
        }, pk="crawl_id")


def build_index(archive: Archive, db_path: str | Path,
                progress: Callable[[str], None] | None = None,
                crawl_ids: Iterable[str] | None = None) -> IndexStats:
    """Bring the index at ``db_path`` up to date with ``archive`` (reads only new manifests)."""
    started = time.monotonic()
    stats = IndexStats()
    db = open_index(db_path)
    try:
        _bind(db, archive.uri)
        builder = _Builder(archive, db, stats)
        for crawl_id in sorted(crawl_ids if crawl_ids is not None else archive.crawls()):
            with db.conn:  # one transaction per crawl: an interrupted run loses at most one
                builder.crawl(crawl_id)
                if progress:
                    progress(crawl_id)
        with db.conn:
            builder.finish()
    finally:
        db.close()
    stats.seconds = time.monotonic() - started
    return stats
