"""``govcrawl reextract``: run today's extraction again over what the archive already holds.

Documents are re-extracted from their raw responses (the WARC records ``meta.json`` points to),
attachments from their stored bodies; nothing is fetched. A document whose text (with its
attachments' text, for a notice that is only its attachments) is unchanged is left alone; one that
changed goes through the dedup state like a crawled page (``changed``: a new version beside the
old ones, pointing at the same WARC records). An attachment whose text or metadata changed gets
its ``text`` / ``text.json`` replaced. What was written is in the manifest of a crawl
``<timestamp>-reextract``.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from crawler.archive import layout
from crawler.archive.archive import MUTABLE, Archive
from crawler.archive.writer import ArchiveWriter, attachment_text_objects
from crawler.items import ARTICLE, ATTACHMENT, UNCHANGED, PageItem, ResponseRecord, utc_now

logger = logging.getLogger(__name__)

DOC_OUTCOMES = ("new", "changed", "near_duplicate")


@dataclass
class Counts:
    """What a reextract run did."""

    documents: Counter[str] = field(default_factory=Counter)  # unchanged / changed / failed
    attachments: Counter[str] = field(default_factory=Counter)  # unchanged / changed / failed

    def to_dict(self) -> dict[str, Any]:
        return {"documents": dict(self.documents), "attachments": dict(self.attachments)}


def _selected(entry: dict[str, Any], site: str | None, since: str | None, date: str) -> bool:
    name = entry.get("site") or ""
    if site and site not in (name, layout.site_part(name)):
        return False
    return not since or date >= since


def latest_documents(archive: Archive, site: str | None = None,
                     since: str | None = None) -> list[dict[str, Any]]:
    """The manifest line of each document's latest stored version (filtered like archive ls)."""
    latest: dict[str, dict[str, Any]] = {}
    for entry in archive.entries():
        if entry.get("kind") != ARTICLE or entry.get("outcome") not in DOC_OUTCOMES:
            continue
        if entry.get("doc_id") is None or entry.get("version") is None:
            continue
        held = latest.get(entry["doc_id"])
        if held is None or int(entry["version"]) >= int(held["version"]):
            latest[entry["doc_id"]] = entry
    date = lambda e: e.get("published") or (e.get("fetched_at") or "")[:10]  # noqa: E731
    return sorted((e for e in latest.values() if _selected(e, site, since, date(e))),
                  key=lambda e: (e.get("site") or "", e["doc_id"]))


def stored_attachments(archive: Archive, site: str | None = None,
                       since: str | None = None) -> dict[str, dict[str, Any]]:
    """``sha256 -> first manifest line`` of every stored attachment (filtered by site and fetch
    date), and through it the URLs each was fetched at."""
    found: dict[str, dict[str, Any]] = {}
    for entry in archive.entries():
        sha = entry.get("sha256")
        if entry.get("kind") != ATTACHMENT or not sha:
            continue
        if not _selected(entry, site, since, (entry.get("fetched_at") or "")[:10]):
            continue
        found.setdefault(sha, {**entry, "urls": set()})["urls"].update(
            u for u in (entry.get("url"), entry.get("final_url")) if u)
    return found


class WarcReader:
    """Reads single response records out of archived WARC segments (one segment kept)."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self._key: str | None = None
        self._data = b""

    def record(self, page: dict[str, Any]) -> ResponseRecord:
        where = page["warc"]
        if where["key"] != self._key:
            self._data, self._key = self.archive.get(where["key"]), where["key"]
        member = self._data[where["offset"]:where["offset"] + where["length"]]
        for rec in ArchiveIterator(io.BytesIO(member)):
            if rec.rec_type != "response":
                continue
            headers = rec.http_headers
            return ResponseRecord(
                url=rec.rec_headers.get_header("WARC-Target-URI") or page["url"],
                status=int(headers.get_statuscode() or page.get("status") or 200),
                headers=[(k, v) for k, v in headers.headers
                         if not k.lower().startswith("x-archive-orig-")],
                body=rec.content_stream().read(),
                fetched_at=page.get("fetched_at") or rec.rec_headers.get_header("WARC-Date"),
                warc=where,  # archived already: a new version points at this record
            )
        raise ValueError(f"no response record at {where['key']}:{where['offset']}")


def _changed(archive: Archive, objects: list[tuple[str, bytes, str]]) -> bool:
    for key, data, _ in objects:
        try:
            if archive.digest(key) != layout.sha256_hex(data):
                return True
        except KeyError:
            return True
    return False


def reextract_attachments(archive: Archive, writer: ArchiveWriter,
                          attachments: dict[str, dict[str, Any]], counts: Counts) -> dict[str, Any]:
    """Read every attachment again; replace ``text`` / ``text.json`` where they changed.
    Returns ``sha256 -> AttachmentText | None`` for the notices that are only attachments."""
    from pipelines.extract import read_attachment

    results: dict[str, Any] = {}
    for sha, entry in attachments.items():
        try:
            body = archive.get(layout.attachment_body_key(sha))
        except KeyError:
            counts.attachments["missing"] += 1
            continue
        result, error = read_attachment(body)
        results[sha] = result
        objects = attachment_text_objects(sha, result, error)
        if not objects:
            continue
        if not _changed(archive, objects):
            counts.attachments["unchanged"] += 1
            continue
        writer.write_objects({"kind": "attachment_text", "site": entry.get("site"),
                              "sha256": sha, "url": entry.get("url")}, objects, MUTABLE)
        counts.attachments["changed"] += 1
    return results


class AttachmentTexts:
    """Attachment results by SHA-256 (re-read ones first), read on demand for the rest."""

    def __init__(self, archive: Archive, stored: dict[str, dict[str, Any]],
                 results: dict[str, Any]):
        from crawler.urls import canonicalize

        self.archive, self.results = archive, dict(results)
        self.by_url = {canonicalize(url): sha for sha, entry in stored.items()
                       for url in entry["urls"]}

    def for_url(self, url: str) -> tuple[str | None, Any]:
        from crawler.urls import canonicalize
        from pipelines.extract import read_attachment

        sha = self.by_url.get(canonicalize(url))
        if sha is None:
            return None, None
        if sha not in self.results:
            try:
                self.results[sha], _ = read_attachment(
                    self.archive.get(layout.attachment_body_key(sha)))
            except KeyError:
                self.results[sha] = None
        return sha, self.results[sha]


def add_attachment_text(doc: Any, item: PageItem, texts: AttachmentTexts) -> None:
    """A notice that is only its attachments: their text, as the crawl gives it."""
    from crawler.extract.attachments import add_attachment_texts, attachment_only

    if attachment_only(doc):
        found = [(link["url"], *texts.for_url(link["url"])) for link in doc.attachments]
        item.attachment_sources += add_attachment_texts(doc, found)


def reextract(archive: Archive, writer: ArchiveWriter, dedup: Any, *, site: str | None = None,
              since: str | None = None) -> Counts:
    """Re-extract the selected documents and attachments of ``archive``; see the module doc."""
    from pipelines.extract import extract_pages

    counts = Counts()
    selected = stored_attachments(archive, site, since)
    results = reextract_attachments(archive, writer, selected, counts)
    texts = AttachmentTexts(archive, stored_attachments(archive), results)
    reader = WarcReader(archive)
    docs = latest_documents(archive, site, since)
    # grouped by the WARC segment of their first page, so that each segment is read once
    for entry in sorted(docs, key=lambda e: ((e.get("warc") or [{}])[0].get("key") or "",
                                             e["doc_id"])):
        try:
            meta = archive.get_json(layout.doc_keys(entry["site"], entry["doc_id"],
                                                    int(entry["version"]))[1])
            pages = [reader.record(page) for page in meta["pages"]]
        except (KeyError, ValueError, OSError) as exc:
            logger.warning("reextract: %s v%s: %s", entry["doc_id"], entry["version"], exc)
            counts.documents["failed"] += 1
            continue
        if meta.get("url") and meta["url"] != pages[0].url:
            pages[0].requested_url = meta["url"]
        item = PageItem(site=meta.get("site") or entry["site"], kind=ARTICLE,
                        response=pages[0], more_pages=pages[1:], crawl_id=writer.crawl_id,
                        attachment_files={a["url"]: a["sha256"]
                                          for a in meta.get("attachments") or []
                                          if a.get("url") and a.get("sha256")})
        doc = item.document = extract_pages(pages)
        add_attachment_text(doc, item, texts)
        if not doc.is_document:
            counts.documents["not_document"] += 1  # kept as it was: nothing is ever removed
            continue
        result = dedup.check(meta.get("url") or item.url, doc.searchable_text(), site=item.site,
                             index_no=doc.index_no, title=doc.title, attachments=doc.attachments,
                             etag=pages[0].header("ETag"),
                             last_modified=pages[0].header("Last-Modified"),
                             requested_url=pages[0].requested_url)
        if result.outcome == UNCHANGED:
            counts.documents["unchanged"] += 1
            continue
        item.dedup = result
        writer.write(item)
        counts.documents[result.outcome] += 1
    return counts


def new_crawl_id() -> str:
    """The id of a reextract run, as a crawl: ``<UTC timestamp>-reextract``."""
    return utc_now().replace("-", "").replace(":", "") + "-reextract"
