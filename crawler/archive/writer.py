""":class:`ArchiveWriter`: turns pipeline items into archive writes, never losing one.

For each item the writer appends the raw exchanges to the crawl's local WARC segment, builds a
:class:`~crawler.archive.operations.Plan` (typed operations: the objects to write, see
docs/archive-layout.md) and submits it to the :class:`~crawler.archive.outbox.Outbox`, which
executes it (:class:`~crawler.archive.executor.Executor`) or spools it while the store is down.
Executed plans' manifest lines go to the work directory's journal; ``close()`` uploads the WARC
segments and turns the journal into the crawl's manifest. Everything here is synchronous and
thread-safe: the Scrapy pipeline runs it in threads.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.archive import IF_ABSENT, IMMUTABLE, Archive, dumps, dumps_line
from crawler.archive.executor import Executed, Executor
from crawler.archive.operations import Plan, PutDocument, PutObject, WriteReport
from crawler.archive.outbox import (
    Outbox,
    WorkDir,
    manifest_plan,
    recover_orphans,
    segment_plan,
    split_journal,
)
from crawler.archive.spool import Spool
from crawler.archive.stores import ArchiveError
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

__all__ = ["ArchiveWriter", "split_journal"]

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


class ArchiveWriter:
    """Writes items of one crawl to ``archive``; spools to ``<state_dir>/spool`` when it fails."""

    def __init__(self, archive: Archive, state_dir: str | os.PathLike[str], crawl_id: str, *,
                 warc_max_bytes: int = 100 * 2**20, probe_interval: float = 15.0,
                 meta_headers: tuple[str, ...] = META_HEADERS):
        self.archive, self.crawl_id = archive, crawl_id or utc_now().replace(":", "")
        self.state_dir = Path(state_dir)
        self.spool = Spool(self.state_dir / "spool")
        self.meta_headers = tuple(h.lower() for h in meta_headers)
        self.executor = Executor(archive)
        self.outbox = Outbox(self.executor, self.spool, probe_interval=probe_interval,
                             on_executed=self._journal_line)
        self._journal_lock = threading.Lock()
        # Work directory: WARC segments being written and the manifest journal; locked so that
        # a later run can tell a crashed writer's leftovers from a live one's.
        self.workdir = WorkDir(self.state_dir / "archive-work", self.crawl_id, archive.uri)
        self.work = self.workdir.path
        self.warc = WarcSegments(self.workdir.warc_dir, self.crawl_id, max_bytes=warc_max_bytes)
        self.closed = self._closing = False

    @property
    def stats(self) -> collections.Counter[str]:
        """Counters of the outbox and executor (objects, bytes, spooled, flushed, ...)."""
        return self.outbox.stats + self.executor.stats

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Check the store (a bad bucket or URI raises), recover crashed runs, flush the spool."""
        self.outbox.check()
        recover_orphans(self.state_dir / "archive-work", self.spool, exclude=self.work)
        if self.outbox.up:
            self.outbox.flush()

    def close(self) -> dict[str, Any]:
        """Upload WARC segments, flush the spool, write the manifest; return a summary."""
        if self.closed or self._closing:
            return self.summary()
        self._closing = True
        for key, path in self.warc.finish():
            self.outbox.submit(segment_plan(self.archive.uri, self.crawl_id, key, path))
        self.outbox.breaker.probe_now()  # try the store once more at close, whatever the interval
        if self.outbox.available():
            self.outbox.flush()
        with self._journal_lock:
            self.workdir.journal.flush()
            manifests = split_journal(self.workdir.journal_path, self.crawl_id, self.work)
        for crawl_id, path in manifests.items():
            self.outbox.submit(manifest_plan(self.archive.uri, crawl_id, path))
        self.closed = True
        self.warc.close()
        self.workdir.remove()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {**self.stats, "spool_entries": len(self.spool.ids(self.archive.uri))}

    def flush(self) -> int:
        """Upload spooled entries for this archive, oldest first; return how many were sent."""
        return self.outbox.flush()

    def take_forgotten(self) -> list[dict[str, Any]]:
        """Dedup verdicts of spool entries set aside as unwritable since the last call: the
        caller undoes them in the dedup state so that those documents are fetched again."""
        return self.outbox.take_forgotten()

    # -- items -----------------------------------------------------------------------------
    def write(self, item: PageItem) -> dict[str, Any]:
        """Archive one item (or spool it); set and return ``item.archived``."""
        if self.closed or self._closing:
            raise ArchiveError("archive writer is closed")
        pages = [item.response, *item.more_pages]
        outcome = item.dedup.outcome if item.dedup is not None else None
        # Pages recorded as downloaded (the crawl's download hook) are not written again.
        if item.kind != ATTACHMENT and outcome == UNCHANGED:
            warc = [p.warc or self.warc.write_revisit(p) for p in pages]
        else:
            warc = [p.warc or self.warc.write_exchange(p) for p in pages]
        done = self.outbox.submit(self.plan_item(item, warc))
        for key, path in self.warc.take_finished():
            self.outbox.submit(segment_plan(self.archive.uri, self.crawl_id, key, path))
        item.archived = {**self._result(done), "warc": warc}
        return item.archived

    def write_exchange(self, rec: ResponseRecord, *, raw: bool = True) -> dict[str, Any]:
        """Write one downloaded exchange (any: a list page, robots.txt, a redirect, an error or
        challenge page, an article) to the WARC, its body as received; return where."""
        if self.closed or self._closing:
            raise ArchiveError("archive writer is closed")
        where = self.warc.write_exchange(rec, raw=raw)
        for key, path in self.warc.take_finished():
            self.outbox.submit(segment_plan(self.archive.uri, self.crawl_id, key, path))
        return where

    def write_objects(self, entry: dict[str, Any], objects: list[tuple[str, bytes, str]],
                      mode: str) -> dict[str, Any]:
        """Write ``(key, bytes, content type)`` objects (or spool them), with one manifest line
        ``entry`` + ``objects`` (``govcrawl reextract``: an attachment's new text)."""
        plan = Plan(self.archive.uri, self.crawl_id, [],
                    entry={"crawl_id": self.crawl_id, **entry})
        for key, data, ctype in objects:
            plan.ops.append(PutObject(key, plan.add_blob(data), layout.sha256_hex(data), ctype,
                                      mode))
        return self._result(self.outbox.submit(plan))

    def write_crawl_report(self, report: dict[str, Any], crawl_id: str | None = None) -> str:
        """Store ``crawls/<crawl_id>/report.json`` now, or spool it; return its key."""
        cid = crawl_id or self.crawl_id
        self.outbox.submit(Plan(self.archive.uri, cid, [WriteReport(cid, report)]))
        return layout.report_key(cid)

    @staticmethod
    def _result(done: Executed | None) -> dict[str, Any]:
        if done is None:
            return {"spooled": True, "keys": [], "bytes": 0, "objects": 0}
        written = [r for r in done.results if r.written]
        return {"spooled": False, "keys": [r.key for r in done.results],
                "bytes": sum(r.size for r in written), "objects": len(written)}

    def _journal_line(self, plan: Plan, done: Executed) -> None:
        """Journal a manifest line; the journal becomes the crawl's manifest at close (nothing is
        kept in memory, so a long crawl does not grow)."""
        if done.line is None:
            return
        with self._journal_lock:
            self.workdir.journal.write(dumps_line(done.line) + "\n")
            self.workdir.journal.flush()

    # -- plans -----------------------------------------------------------------------------
    def plan_item(self, item: PageItem, warc: list[dict[str, Any]]) -> Plan:
        """The writes an item needs, as a plan of typed operations (see the layout doc)."""
        rec, dedup, doc = item.response, item.dedup, item.document
        crawl_id = item.crawl_id or self.crawl_id
        entry: dict[str, Any] = {
            "crawl_id": crawl_id, "kind": item.kind, "site": item.site,
            "url": rec.requested_url or rec.url, "final_url": rec.url,
            "fetched_at": rec.fetched_at, "status": rec.status,
            "outcome": dedup.outcome if dedup else NEW,
            "warc": warc,
        }
        plan = Plan(self.archive.uri, crawl_id, [], entry=entry,
                    dedup=dedup.to_dict() if dedup is not None else None)
        ops = plan.ops

        if item.kind == ATTACHMENT:
            body = rec.body
            sha = layout.sha256_hex(body)
            ctype = rec.header("Content-Type") or "application/octet-stream"
            ident = {"url": entry["url"], "final_url": rec.url, "name": item.link_text,
                     "found_on": item.found_on, "content_type": ctype}
            ref = {**ident, "sha256": sha, "bytes": len(body), "site": item.site,
                   "first_crawl_id": crawl_id, "first_fetched_at": rec.fetched_at}
            ops.append(PutObject(layout.attachment_body_key(sha), plan.add_blob(body), sha,
                                 ctype, IMMUTABLE))
            ref_bytes = dumps(ref)
            ops.append(PutObject(layout.attachment_ref_key(sha, dumps(ident)),
                                 plan.add_blob(ref_bytes), layout.sha256_hex(ref_bytes),
                                 "application/json", IF_ABSENT))
            for key, data, ctype in attachment_text_objects(sha, item.attachment_text,
                                                            item.attachment_error):
                ops.append(PutObject(key, plan.add_blob(data), layout.sha256_hex(data), ctype,
                                     IF_ABSENT))
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
            ops.append(PutObject(layout.alias_key(item.site, rec.url, dedup.text_hash),
                                 plan.add_blob(data), layout.sha256_hex(data),
                                 "application/json", IF_ABSENT))
            entry.update(doc_id=dedup.doc_id, canonical_id=dedup.canonical_id,
                         title=doc.title)
        else:
            text = doc.text.encode("utf-8")
            doc_id = dedup.doc_id if dedup else "u" + layout.url_hash(entry["url"])[:24]
            version = dedup.version if dedup else None
            meta = self._meta(item, warc, doc_id, text)
            extra = None
            if doc.attachment_text:
                extra_bytes = doc.attachment_text.encode("utf-8")
                extra = plan.add_blob(extra_bytes)
                meta["attachment_text"] = {"sha256": layout.sha256_hex(extra_bytes),
                                           "chars": len(doc.attachment_text),
                                           "sources": item.attachment_sources}
            ops.append(PutDocument(item.site, doc_id, version, plan.add_blob(text), meta,
                                   attachment_text=extra))
            entry.update(doc_id=doc_id, version=version, title=doc.title,
                         published=doc.published, canonical_id=dedup.canonical_id if dedup
                         else None)
        return plan

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


def attachment_text_objects(sha256: str, result: Any, error: str | None
                            ) -> list[tuple[str, bytes, str]]:
    """``(key, bytes, content type)`` of an attachment's ``text`` and ``text.json`` (what was
    read: format, pages or sheets, chars, needs_ocr, reader; or the error). Nothing for a file
    that is not a document type with a reader."""
    text_key, meta_key = layout.attachment_text_keys(sha256)
    if result is None:
        if error is None:
            return []
        return [(meta_key, dumps({"sha256": sha256, "error": error}), "application/json")]
    text = result.text.encode("utf-8")
    meta = {**result.meta(), "sha256": sha256, "text_sha256": layout.sha256_hex(text)}
    return [(text_key, text, "text/plain; charset=utf-8"),
            (meta_key, dumps(meta), "application/json")]
