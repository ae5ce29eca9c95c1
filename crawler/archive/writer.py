""":class:`ArchiveWriter`: turns pipeline items into archive writes, never losing one.

For each item the writer appends the raw exchanges to the crawl's local WARC segment, builds a
*plan* (the objects to write, see docs/archive-layout.md), and executes it against the store. If
the store fails (after retries) the plan goes to the spool and the writer stops trying the store
for ``probe_interval`` seconds; the first item after that probes the store and, if it answers,
flushes the spool first. ``close()`` uploads WARC segments and the crawl's manifest (or spools
them). Everything here is synchronous and thread-safe: the Scrapy pipeline runs it in threads.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.archive import (
    IF_ABSENT,
    IMMUTABLE,
    Archive,
    CorruptDataError,
    ObjectConflictError,
    PutResult,
    dumps,
    dumps_line,
)
from crawler.archive.spool import Blob, Spool
from crawler.archive.stores import ArchiveConfigError, ArchiveError, StoreError
from crawler.archive.warc import WarcSegments
from crawler.attachments import stored_attachments
from crawler.items import (
    ATTACHMENT,
    DUPLICATE,
    NEW,
    UNCHANGED,
    PageItem,
    ResponseRecord,
    utc_now,
)

logger = logging.getLogger(__name__)

FORMAT = "govcrawl-archive/1"
#: Response headers copied into meta.json.
META_HEADERS = ("content-type", "content-length", "last-modified", "etag", "date", "server",
                "content-language", "location")


def _headers_of_interest(rec: ResponseRecord, names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in rec.headers:
        if key.lower() in names and key.lower() not in out:
            out[key.lower()] = value
    return out


def _load(blob: Blob) -> bytes:
    return blob if isinstance(blob, bytes) else Path(blob).read_bytes()


class ArchiveWriter:
    """Writes items of one crawl to ``archive``; spools to ``<state_dir>/spool`` when it fails."""

    def __init__(self, archive: Archive, state_dir: str | os.PathLike[str], crawl_id: str, *,
                 warc_max_bytes: int = 100 * 2**20, probe_interval: float = 15.0,
                 meta_headers: tuple[str, ...] = META_HEADERS):
        self.archive, self.crawl_id = archive, crawl_id or utc_now().replace(":", "")
        self.state_dir = Path(state_dir)
        self.spool = Spool(self.state_dir / "spool")
        self.probe_interval = float(probe_interval)
        self.meta_headers = tuple(h.lower() for h in meta_headers)
        self.stats: collections.Counter[str] = collections.Counter()
        self._state_lock = threading.Lock()
        self._flush_lock = threading.RLock()
        self._up = True
        self._next_probe = 0.0
        # Work directory: WARC segments being written and the manifest journal; locked so that
        # a later run can tell a crashed writer's leftovers from a live one's.
        self.work = self.state_dir / "archive-work" / uuid.uuid4().hex[:16]
        self.work.mkdir(parents=True)
        self._lockfile = open(self.work / ".lock", "a")  # noqa: SIM115 - held until close()
        # Blocking: another writer's orphan sweep may hold it for a moment (see _recover_orphans).
        fcntl.flock(self._lockfile, fcntl.LOCK_EX)
        (self.work / "crawl.json").write_text(
            json.dumps({"crawl_id": self.crawl_id, "archive": archive.uri}), "utf-8")
        self._journal = open(self.work / "journal.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.warc = WarcSegments(self.work / "warc", self.crawl_id, max_bytes=warc_max_bytes)
        self.closed = self._closing = False

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Check the store (a bad bucket or URI raises), recover crashed runs, flush the spool."""
        try:
            self.archive.ping()
        except ArchiveConfigError:
            raise
        except StoreError as exc:
            self._mark_down(exc)
        self._recover_orphans()
        if self._up:
            self.flush()

    def close(self) -> dict[str, Any]:
        """Upload WARC segments, flush the spool, write the manifest; return a summary."""
        if self.closed or self._closing:
            return self.summary()
        self._closing = True
        for key, path in self.warc.finish():
            self._submit(*self._segment_plan(key, path))
        with self._state_lock:
            self._next_probe = 0.0  # try the store once more at close, whatever the interval
        if self._available():
            self.flush()
        with self._state_lock:
            self._journal.flush()
            manifests = split_journal(self.work / "journal.jsonl", self.crawl_id, self.work)
        for crawl_id, path in manifests.items():
            self._submit(self._manifest_plan(crawl_id), [path])
        self.closed = True
        self._journal.close()
        self.warc.close()
        self._lockfile.close()
        shutil.rmtree(self.work, ignore_errors=True)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {**self.stats, "spool_entries": len(self.spool.ids(self.archive.uri))}

    # -- items -----------------------------------------------------------------------------
    def write(self, item: PageItem) -> dict[str, Any]:
        """Archive one item (or spool it); set and return ``item.archived``."""
        if self.closed or self._closing:
            raise ArchiveError("archive writer is closed")
        pages = [item.response, *item.more_pages]
        outcome = item.dedup.outcome if item.dedup is not None else None
        if item.kind != ATTACHMENT and outcome == UNCHANGED:
            warc = [self.warc.write_revisit(p) for p in pages]
        else:
            warc = [self.warc.write_exchange(p) for p in pages]
        plan, blobs = self.plan_item(item, warc)
        result = self._submit(plan, blobs)
        for key, path in self.warc.take_finished():
            self._submit(*self._segment_plan(key, path))
        item.archived = {**result, "warc": warc}
        return item.archived

    def write_crawl_report(self, report: dict[str, Any], crawl_id: str | None = None) -> str:
        """Store ``crawls/<crawl_id>/report.json`` now, or spool it; return its key."""
        cid = crawl_id or self.crawl_id
        plan = {"archive": self.archive.uri, "crawl_id": cid, "entry": None, "nblobs": 0,
                "ops": [{"op": "report", "crawl_id": cid, "report": report}]}
        self._submit(plan, [])
        return layout.report_key(cid)

    # -- plans -----------------------------------------------------------------------------
    def plan_item(self, item: PageItem, warc: list[dict[str, Any]]
                  ) -> tuple[dict[str, Any], list[Blob]]:
        """The writes an item needs, as a JSON-able plan plus blobs (see the layout doc)."""
        rec, dedup, doc = item.response, item.dedup, item.document
        crawl_id = item.crawl_id or self.crawl_id
        entry: dict[str, Any] = {
            "crawl_id": crawl_id, "kind": item.kind, "site": item.site,
            "url": rec.requested_url or rec.url, "final_url": rec.url,
            "fetched_at": rec.fetched_at, "status": rec.status,
            "outcome": dedup.outcome if dedup else NEW,
            "warc": warc,
        }
        ops: list[dict[str, Any]] = []
        blobs: list[Blob] = []

        def blob(data: bytes) -> int:
            blobs.append(data)
            return len(blobs) - 1

        if item.kind == ATTACHMENT:
            body = rec.body
            sha = layout.sha256_hex(body)
            ctype = rec.header("Content-Type") or "application/octet-stream"
            ident = {"url": entry["url"], "final_url": rec.url, "name": item.link_text,
                     "found_on": item.found_on, "content_type": ctype}
            ref = {**ident, "sha256": sha, "bytes": len(body), "site": item.site,
                   "first_crawl_id": crawl_id, "first_fetched_at": rec.fetched_at}
            ops.append({"op": "put", "key": layout.attachment_body_key(sha), "blob": blob(body),
                        "sha256": sha, "content_type": ctype, "mode": IMMUTABLE})
            ref_bytes = dumps(ref)
            ops.append({"op": "put", "key": layout.attachment_ref_key(sha, dumps(ident)),
                        "blob": blob(ref_bytes), "sha256": layout.sha256_hex(ref_bytes),
                        "content_type": "application/json", "mode": IF_ABSENT})
            entry.update(sha256=sha, name=item.link_text, found_on=item.found_on)
        elif doc is None or not doc.is_document:
            entry["outcome"] = "no_document"
        elif dedup is not None and dedup.outcome == UNCHANGED:
            entry.update(doc_id=dedup.doc_id, version=dedup.version)
        elif dedup is not None and dedup.outcome == DUPLICATE:
            alias = {"url": entry["url"], "final_url": rec.url, "site": item.site,
                     "doc_id": dedup.doc_id, "canonical_id": dedup.canonical_id,
                     "text_hash": dedup.text_hash, "first_crawl_id": crawl_id,
                     "first_fetched_at": rec.fetched_at}
            data = dumps(alias)
            ops.append({"op": "put", "key": layout.alias_key(item.site, rec.url, dedup.text_hash),
                        "blob": blob(data), "sha256": layout.sha256_hex(data),
                        "content_type": "application/json", "mode": IF_ABSENT})
            entry.update(doc_id=dedup.doc_id, canonical_id=dedup.canonical_id,
                         title=doc.title)
        else:
            text = doc.text.encode("utf-8")
            doc_id = dedup.doc_id if dedup else "u" + layout.url_hash(entry["url"])[:24]
            version = dedup.version if dedup else None
            meta = self._meta(item, warc, doc_id, text)
            ops.append({"op": "doc", "site": item.site, "doc_id": doc_id, "version": version,
                        "text": blob(text), "meta": meta})
            entry.update(doc_id=doc_id, version=version, title=doc.title,
                         published=doc.published, canonical_id=dedup.canonical_id if dedup
                         else None)
        plan = {"archive": self.archive.uri, "crawl_id": crawl_id, "entry": entry,
                "ops": ops, "nblobs": len(blobs)}
        return plan, blobs

    def _meta(self, item: PageItem, warc: list[dict[str, Any]], doc_id: str,
              text: bytes) -> dict[str, Any]:
        rec, doc, dedup = item.response, item.document, item.dedup
        assert doc is not None
        pages = [item.response, *item.more_pages]
        return {
            "format": FORMAT,
            "doc_id": doc_id,
            "site": item.site,
            "url": rec.requested_url or rec.url,
            "final_url": rec.url,
            "crawl_id": item.crawl_id or self.crawl_id,
            "fetched_at": rec.fetched_at,
            "title": doc.title, "published": doc.published,
            "published_from": doc.published_from, "written": doc.written,
            "source": doc.source, "publisher": doc.publisher,
            "index_no": doc.index_no, "doc_no": doc.doc_no, "topic": doc.topic,
            "attachments": stored_attachments(doc.attachments, item.attachment_files),
            "spam_removed": doc.spam, "removed": doc.removed, "findings": doc.findings,
            "page_meta": doc.meta,
            "dedup": dedup.to_dict() if dedup else {"outcome": NEW, "assumed": True},
            "canonical_id": dedup.canonical_id if dedup else None,
            "hashes": {
                "text_sha256": layout.sha256_hex(text),
                "text_hash": dedup.text_hash if dedup else None,
            },
            "http": {"status": rec.status,
                     "headers": _headers_of_interest(rec, self.meta_headers)},
            "pages": [
                {"url": p.url, "status": p.status, "fetched_at": p.fetched_at,
                 "body_sha256": layout.sha256_hex(p.body), "bytes": len(p.body), "warc": w}
                for p, w in zip(pages, warc, strict=True)
            ],
        }

    def _segment_plan(self, key: str, path: Path) -> tuple[dict[str, Any], list[Blob]]:
        sha = layout.sha256_hex(path.read_bytes())
        plan = {"archive": self.archive.uri, "crawl_id": self.crawl_id, "nblobs": 1,
                "entry": {"crawl_id": self.crawl_id, "kind": "warc"},
                "ops": [{"op": "put", "key": key, "blob": 0, "sha256": sha,
                         "content_type": "application/warc", "mode": IMMUTABLE}]}
        return plan, [path]

    def _manifest_plan(self, crawl_id: str) -> dict[str, Any]:
        """Append blob 0 (JSON lines) to the crawl's manifest."""
        return {"archive": self.archive.uri, "crawl_id": crawl_id, "entry": None, "nblobs": 1,
                "ops": [{"op": "manifest", "crawl_id": crawl_id, "blob": 0}]}

    # -- execution -------------------------------------------------------------------------
    def _execute(self, plan: dict[str, Any], blobs: list[Blob]) -> list[PutResult]:
        results: list[PutResult] = []
        version = None
        for op in plan["ops"]:
            kind = op["op"]
            if kind == "put":
                results.append(self.archive.put(op["key"], blobs[op["blob"]], op["content_type"],
                                                op["mode"], op["sha256"]))
            elif kind == "doc":
                version, written = self._put_doc(op, _load(blobs[op["text"]]))
                results.extend(written)
            elif kind == "manifest":
                done = self.archive.append_manifest(op["crawl_id"], _load(blobs[op["blob"]]))
                results.extend([done] if done else [])
            elif kind == "report":
                self.archive.write_crawl_report(op["crawl_id"], op["report"])
            else:
                raise ArchiveError(f"unknown plan operation {kind!r}")
        entry = plan.get("entry")
        if entry is not None:
            line = {**entry, "objects": [r.to_dict() for r in results]}
            if version is not None:
                line["version"] = version
            with self._state_lock:
                self._route_line(line)
        return results

    def _put_doc(self, op: dict[str, Any], text: bytes) -> tuple[int, list[PutResult]]:
        """Write ``text`` + ``meta.json`` of one version; never overwrite another version."""
        site, doc_id, version = op["site"], op["doc_id"], op["version"]
        sha = layout.sha256_hex(text)
        if sha != op["meta"]["hashes"]["text_sha256"]:
            raise CorruptDataError(f"{doc_id}: spooled text no longer matches its SHA-256")
        if version is None:  # no dedup verdict: continue the stored history
            versions = self.archive.doc_versions(site, doc_id)
            version = versions[-1] if versions else 1
            if versions:
                text_key = layout.doc_keys(site, doc_id, version)[0]
                if self.archive.retry(lambda: self.archive.store.checksum(text_key)) != sha:
                    version += 1
        for _ in range(1000):
            text_key, meta_key = layout.doc_keys(site, doc_id, version)
            try:
                rt = self.archive.put(text_key, text, "text/plain; charset=utf-8", IMMUTABLE, sha)
            except ObjectConflictError:
                logger.warning("archive: %s v%d exists with other text; writing v%d",
                               doc_id, version, version + 1)
                self.stats["version_conflicts"] += 1
                version += 1
                continue
            meta = {**op["meta"], "version": version,
                    "keys": {"text": text_key, "meta": meta_key}}
            data = dumps(meta)
            rm = self.archive.put(meta_key, data, "application/json", IF_ABSENT,
                                  layout.sha256_hex(data))
            return version, [rt, rm]
        raise ArchiveError(f"no free version for {doc_id}")

    def _route_line(self, line: dict[str, Any]) -> None:
        """Journal a manifest line; the journal becomes the crawl's manifest at close (nothing is
        kept in memory, so a long crawl does not grow)."""
        self._journal.write(dumps_line(line) + "\n")
        self._journal.flush()

    def _submit(self, plan: dict[str, Any], blobs: list[Blob]) -> dict[str, Any]:
        if self._available():
            try:
                results = self._execute(plan, blobs)
            except ObjectConflictError as exc:
                logger.error("archive: %s; kept in the spool", exc)
                self.stats["conflicts"] += 1
            except StoreError as exc:
                self._mark_down(exc)
            else:
                for blob in blobs:
                    if isinstance(blob, Path):
                        blob.unlink(missing_ok=True)
                return self._count(results)
        self.spool.add(plan, blobs)
        with self._state_lock:
            self.stats["spooled"] += 1
        return {"spooled": True, "keys": [], "bytes": 0, "objects": 0}

    def _count(self, results: list[PutResult]) -> dict[str, Any]:
        written = [r for r in results if r.written]
        nbytes = sum(r.size for r in written)
        with self._state_lock:
            self.stats["objects"] += len(written)
            self.stats["bytes"] += nbytes
            self.stats["existing"] += len(results) - len(written)
        return {"spooled": False, "keys": [r.key for r in results], "bytes": nbytes,
                "objects": len(written)}

    # -- store health and the spool ----------------------------------------------------------
    def _mark_down(self, exc: Exception) -> None:
        with self._state_lock:
            was_up, self._up = self._up, False
            self._next_probe = time.monotonic() + self.probe_interval
            self.stats["store_errors"] += 1
        if was_up:
            logger.warning("archive store unavailable, spooling to %s: %s", self.spool.dir, exc)

    def _available(self) -> bool:
        with self._state_lock:
            if self._up:
                return True
            if time.monotonic() < self._next_probe:
                return False
            self._next_probe = time.monotonic() + self.probe_interval  # one prober at a time
        try:
            self.archive.ping()
        except ArchiveError:
            return False
        with self._state_lock:
            self._up = True
        logger.info("archive store answers again; flushing the spool")
        self.flush()
        with self._state_lock:
            return self._up

    def flush(self) -> int:
        """Upload spooled entries for this archive, oldest first; return how many were sent."""
        sent = 0
        with self._flush_lock, self.spool.locked():
            for entry in self.spool.ids(self.archive.uri):
                try:
                    plan, blobs = self.spool.load(entry)
                except (OSError, ValueError):
                    continue  # removed by another flusher meanwhile
                try:
                    self._count(self._execute(plan, blobs))
                except ObjectConflictError as exc:
                    logger.error("archive: spool entry %s: %s", entry, exc)
                    self.stats["conflicts"] += 1
                    continue
                except StoreError as exc:
                    self._mark_down(exc)
                    break
                self.spool.remove(entry)
                sent += 1
        self.stats["flushed"] += sent
        return sent

    def _recover_orphans(self) -> None:
        """Spool what crashed writers left in their work directories (WARC, manifest lines)."""
        base = self.state_dir / "archive-work"
        for work in sorted(p for p in base.iterdir() if p.is_dir() and p != self.work):
            try:
                fh = open(work / ".lock", "a")  # noqa: SIM115
            except OSError:
                continue
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer
                if not (work / "crawl.json").exists() and time.time() - work.stat().st_mtime < 3600:
                    continue  # a writer still setting up (it locks right after mkdir)
                try:
                    info = json.loads((work / "crawl.json").read_text("utf-8"))
                except (OSError, ValueError):
                    info = {}
                crawl_id, uri = info.get("crawl_id"), info.get("archive")
                if crawl_id and uri:
                    self._recover_one(work, crawl_id, uri)
            shutil.rmtree(work, ignore_errors=True)

    def _recover_one(self, work: Path, crawl_id: str, uri: str) -> None:
        for seg in sorted((work / "warc").glob("*.warc.gz")):
            key = f"{layout.crawl_prefix(crawl_id)}/warc/{seg.name}"
            sha = layout.sha256_hex(seg.read_bytes())
            plan = {"archive": uri, "crawl_id": crawl_id, "nblobs": 1,
                    "entry": {"crawl_id": crawl_id, "kind": "warc", "recovered": True},
                    "ops": [{"op": "put", "key": key, "blob": 0, "sha256": sha,
                             "content_type": "application/warc", "mode": IMMUTABLE}]}
            self.spool.add(plan, [seg])
        for part_crawl, path in split_journal(work / "journal.jsonl", crawl_id, work).items():
            plan = self._manifest_plan(part_crawl)
            plan["archive"] = uri
            self.spool.add(plan, [path])
        logger.warning("archive: recovered an interrupted crawl %s into the spool", crawl_id)


def split_journal(journal: Path, default_crawl: str, into: Path) -> dict[str, Path]:
    """Stream a writer's journal into one JSON-lines file per crawl id, in ``into``; a torn last
    line (a crash mid-write) is dropped. Lines are copied as written, never held in memory."""
    out: dict[str, Path] = {}
    handles: dict[str, Any] = {}
    if not journal.is_file():
        return out
    try:
        with open(journal, "rb") as source:
            for raw in source:
                try:
                    crawl = json.loads(raw).get("crawl_id") or default_crawl
                except ValueError:
                    break
                if crawl not in handles:
                    out[crawl] = into / f"manifest-{layout.sha256_hex(crawl.encode())[:16]}.jsonl"
                    handles[crawl] = open(out[crawl], "wb")  # noqa: SIM115 - closed below
                handles[crawl].write(raw if raw.endswith(b"\n") else raw + b"\n")
    finally:
        for handle in handles.values():
            handle.close()
    return out
