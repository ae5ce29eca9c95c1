"""The archive: a store plus the key layout, checked writes, manifests and crawl reports."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.stores import (
    ArchiveConfigError,
    Data,
    Store,
    StoreError,
    hash_data,
    open_store,
    store_class,
    validate_uri,
)

logger = logging.getLogger(__name__)

IMMUTABLE, IF_ABSENT, MUTABLE = "immutable", "if_absent", "mutable"


class ObjectConflictError(StoreError):
    """An immutable key already holds different bytes (it is never overwritten)."""


class CorruptDataError(ObjectConflictError):
    """Data waiting to be written (in the spool) does not match the checksum recorded for it."""


def dumps(obj: Any) -> bytes:
    """The archive's JSON encoding: UTF-8, sorted keys, stable bytes for the same data."""
    return (json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def dumps_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass
class PutResult:
    key: str
    sha256: str
    size: int
    written: bool  # False: the same bytes (or, for if_absent, any bytes: then sha256 and size
    # are those of the stored object) were already there

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "bytes": self.size,
                "written": self.written}


@dataclass
class VerifyReport:
    checked: int = 0
    bad: list[str] = field(default_factory=list)  # "key: reason"

    @property
    def ok(self) -> bool:
        return not self.bad


class Archive:
    """One archive location. Every write is checksummed and idempotent; see docs/archive-layout.md.

    Store calls are not retried here: the store's client does that (botocore's retry modes for
    S3), and what still fails is the outbox's business (spool, circuit breaker).
    """

    def __init__(self, store: Store, *, spool_dir: str | os.PathLike[str] | None = None):
        self.store = store
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.uri = store.uri

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()

    # -- objects ---------------------------------------------------------------------------
    def put(self, key: str, data: Data, content_type: str = "application/octet-stream",
            mode: str = IMMUTABLE, sha256: str | None = None) -> PutResult:
        """Write ``data`` at ``key``.

        ``immutable``: absent -> write; same bytes -> nothing; different bytes -> conflict.
        ``if_absent``: write only if the key does not exist. ``mutable``: always write.
        """
        layout.check_key(key)
        if isinstance(data, bytes) and sha256 is not None:
            size = len(data)
        else:
            actual, _, size = hash_data(data)
            if sha256 is not None and actual != sha256:  # e.g. a spooled blob damaged on disk
                raise CorruptDataError(f"{key}: data to write no longer matches its SHA-256")
            sha256 = actual
        if mode != MUTABLE:
            info = self.store.head(key)
            if info is not None:
                if mode == IF_ABSENT:  # record what the key holds, not what was offered
                    stored = info.sha256 or self.store.checksum(key) or sha256
                    return PutResult(key, stored, info.size, False)
                same = info.size == size and (
                    info.sha256 == sha256
                    or (info.sha256 is None and self.store.checksum(key) == sha256)
                )
                if same:
                    return PutResult(key, sha256, size, False)
                raise ObjectConflictError(f"{key} already holds different content")
        self.store.put(key, data, sha256, content_type)
        return PutResult(key, sha256, size, True)

    def get(self, key: str) -> bytes:
        return self.store.get(layout.check_key(key))

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def exists(self, key: str) -> bool:
        return self.store.head(layout.check_key(key)) is not None

    def digest(self, key: str) -> str:
        """SHA-256 recomputed from the stored bytes (streamed, never held whole in memory)."""
        digest = hashlib.sha256()
        for chunk in self.store.iter_bytes(layout.check_key(key)):
            digest.update(chunk)
        return digest.hexdigest()

    # -- identity --------------------------------------------------------------------------
    def archive_id(self) -> str | None:
        """The id in ``archive.json``, or None for an archive that has none (new, or emptied)."""
        try:
            return str(self.get_json(layout.ARCHIVE_ID)["archive_id"])
        except KeyError:
            return None
        except (ValueError, TypeError) as exc:
            raise ArchiveConfigError(f"{self.uri}: unreadable {layout.ARCHIVE_ID} ({exc})") \
                from None

    def claim_id(self, archive_id: str) -> str:
        """Give the archive the id ``archive_id`` unless it has one; return the id it has."""
        self.put(layout.ARCHIVE_ID, dumps({"archive_id": archive_id}), "application/json",
                 IF_ABSENT)
        return self.archive_id() or archive_id

    def has_documents(self) -> bool:
        """Whether anything was archived as a document or an alias."""
        return any(next(iter(self.store.list(prefix)), None) is not None
                   for prefix in (f"{layout.DOCS}/", f"{layout.ALIASES}/"))

    # -- crawls ----------------------------------------------------------------------------
    def write_crawl_report(self, crawl_id: str, report: dict[str, Any]) -> str:
        """Store the crawl report as ``crawls/<crawl_id>/report.json`` (replacing an older one).

        If the store fails and the archive has a spool directory, the report is spooled (and
        uploaded by the next flush) instead of raising.
        """
        key = layout.report_key(crawl_id)
        try:
            self.put(key, dumps(report), "application/json", mode=MUTABLE)
        except StoreError as exc:
            if self.spool_dir is None:
                raise
            from crawler.archive.operations import Plan, WriteReport
            from crawler.archive.spool import Spool

            Spool(self.spool_dir).add(Plan(self.uri, crawl_id, [WriteReport(crawl_id, report)]))
            logger.warning("archive unavailable (%s); crawl report spooled", exc)
        return key

    def append_manifest(self, crawl_id: str, lines: bytes) -> PutResult | None:
        """Add JSON lines to ``crawls/<crawl_id>/manifest.jsonl`` (lines already there are
        skipped, so a retried upload adds nothing twice)."""
        key = layout.manifest_key(crawl_id)
        try:
            old = self.get(key)
        except KeyError:
            old = b""
        if old:
            have = set(old.splitlines())
            new = b"".join(line + b"\n" for line in lines.splitlines()
                           if line.strip() and line not in have)
            if not new:
                return None
            body = old + (b"" if old.endswith(b"\n") else b"\n") + new
        else:
            body = lines
        return self.put(key, body, "application/x-ndjson", mode=MUTABLE)

    def crawls(self) -> list[str]:
        return self.store.children(layout.CRAWLS + "/")

    def manifest(self, crawl_id: str) -> list[dict[str, Any]]:
        try:
            text = self.get(layout.manifest_key(crawl_id)).decode("utf-8")
        except KeyError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every manifest line of every crawl, crawl by crawl."""
        for crawl_id in self.crawls():
            yield from self.manifest(crawl_id)

    def doc_versions(self, site: str, doc_id: str) -> list[int]:
        prefix = layout.doc_prefix(site, doc_id) + "/"
        found = (layout.parse_version(n) for n in self.store.children(prefix))
        return sorted(v for v in found if v is not None)

    def find_doc(self, doc_id: str) -> tuple[str, list[int]] | None:
        """``(site key segment, versions)`` of a document id, searching every site."""
        part = layout.safe_part(doc_id)
        for site in self.store.children(layout.DOCS + "/"):
            prefix = f"{layout.DOCS}/{site}/{part}/"
            versions = sorted(
                v for v in (layout.parse_version(n) for n in self.store.children(prefix))
                if v is not None
            )
            if versions:
                return site, versions
        return None

    # -- verification ----------------------------------------------------------------------
    def verify(self, crawl_id: str | None = None,
               progress: Callable[[str], None] | None = None) -> VerifyReport:
        """Recompute the SHA-256 of every object the manifests list and compare (a listed
        object that is gone is BAD)."""
        report = VerifyReport()
        seen: set[str] = set()
        crawl_ids = [crawl_id] if crawl_id else self.crawls()
        # an object written more than once (an attachment's text rewritten by `reextract`; a
        # document re-crawled by a cluster worker after another died before its verdict was
        # committed) is checked against every write the manifests record: bytes none of them
        # wrote are BAD, an older write's hash is not
        recorded: dict[str, set[str]] = {}
        for cid in self.crawls():
            for entry in self.manifest(cid):
                for obj in entry.get("objects", []):
                    if obj.get("written", True):
                        recorded.setdefault(obj.get("key", ""), set()).add(obj.get("sha256", ""))
        for cid in crawl_ids:
            for entry in self.manifest(cid):
                for obj in entry.get("objects", []):
                    key, want = obj.get("key", ""), obj.get("sha256", "")
                    if key in seen:
                        continue
                    seen.add(key)
                    report.checked += 1
                    try:
                        got = self.digest(key)
                    except KeyError:
                        report.bad.append(f"{key}: missing")
                        continue
                    if got not in recorded.get(key, {want}):
                        report.bad.append(f"{key}: sha256 {got} != recorded {want}")
                    elif progress:
                        progress(key)
            if crawl_id and not self.manifest(cid):
                raise ArchiveConfigError(f"no manifest for crawl {crawl_id!r} in {self.uri}")
        return report


def open_archive(uri: str | None = None, *, settings: Any = None, **options: Any) -> Archive:
    """Open the archive at ``uri`` (directory, ``file://`` or ``s3://bucket/prefix/``).

    With Scrapy ``settings``, ``uri`` defaults to ``GOVCRAWL_ARCHIVE``, store options come from
    the settings (:meth:`Store.options_from_settings`: ``AWS_*``/``GOVCRAWL_S3_*`` for S3) and
    ``<GOVCRAWL_STATE_DIR>/spool`` becomes the spool for crawl reports the store cannot take.
    ``spool_dir`` tunes :class:`Archive`; every other option goes to the store (for S3:
    ``endpoint_url``, ``region_name``, credentials, ``addressing_style``, ``checksum``,
    ``max_attempts``, ``retry_mode``, ``connect_timeout``, ``read_timeout``,
    ``multipart_threshold``, ``multipart_chunksize``).
    """
    if settings is not None:
        uri = uri or settings.get("GOVCRAWL_ARCHIVE") or "archive"
        options = {**store_options_from_settings(settings, uri), **options}
        options.setdefault("spool_dir", Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
                           / "spool")
    spool_dir = options.pop("spool_dir", None)
    return Archive(open_store(uri or "", **options), spool_dir=spool_dir)


def store_options_from_settings(settings: Any, uri: str | None = None) -> dict[str, Any]:
    """The store's constructor options from Scrapy settings (by the URI's store class)."""
    uri = uri or settings.get("GOVCRAWL_ARCHIVE") or "archive"
    return store_class(validate_uri(str(uri))).options_from_settings(settings)
