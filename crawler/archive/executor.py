""":class:`Executor`: carries out a :class:`~crawler.archive.operations.Plan` against the archive.

It only writes: no spooling, no retrying (the store's client retries, see stores.py), no
bookkeeping of store health; those belong to the outbox. Each operation type has one handler
(:attr:`Executor.handlers`).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
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
)
from crawler.archive.operations import (
    AppendManifest,
    Blob,
    Plan,
    PutDocument,
    PutObject,
    WriteReport,
)
from crawler.archive.stores import ArchiveError

logger = logging.getLogger(__name__)


def load_blob(blob: Blob) -> bytes:
    return blob if isinstance(blob, bytes) else Path(blob).read_bytes()


@dataclass
class Executed:
    """What a plan wrote: the store's answers and the manifest line (None for plans without)."""

    results: list[PutResult]
    line: dict[str, Any] | None


class Executor:
    """Executes plans on ``archive``; thread-safe (it holds no state but counters)."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.stats: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.handlers: dict[type, Callable[[Any, Plan], tuple[list[PutResult], int | None]]] = {
            PutObject: self._put_object,
            PutDocument: self._put_document,
            AppendManifest: self._append_manifest,
            WriteReport: self._write_report,
        }

    def execute(self, plan: Plan) -> Executed:
        """Run every operation of ``plan`` in order; raise :class:`StoreError` (store failed),
        :class:`ObjectConflictError` (never overwritten) or :class:`CorruptDataError`."""
        results: list[PutResult] = []
        version = None
        for op in plan.ops:
            handler = self.handlers.get(type(op))
            if handler is None:
                raise ArchiveError(f"no handler for archive operation {type(op).__name__}")
            written, op_version = handler(op, plan)
            results.extend(written)
            version = op_version if op_version is not None else version
        line = None
        if plan.entry is not None:
            line = {**plan.entry, "objects": [r.to_dict() for r in results]}
            if version is not None:
                line["version"] = version
        return Executed(results, line)

    # -- handlers --------------------------------------------------------------------------
    def _put_object(self, op: PutObject, plan: Plan) -> tuple[list[PutResult], None]:
        return [self.archive.put(op.key, plan.blobs[op.blob], op.content_type, op.mode,
                                 op.sha256)], None

    def _append_manifest(self, op: AppendManifest, plan: Plan) -> tuple[list[PutResult], None]:
        done = self.archive.append_manifest(op.crawl_id, load_blob(plan.blobs[op.blob]))
        return ([done] if done else []), None

    def _write_report(self, op: WriteReport, plan: Plan) -> tuple[list[PutResult], None]:
        self.archive.put(layout.report_key(op.crawl_id), dumps(op.report), "application/json",
                         mode="mutable")
        return [], None

    def _put_document(self, op: PutDocument, plan: Plan) -> tuple[list[PutResult], int]:
        """Write text (+ attachment text) + ``meta.json`` of one version; never overwrite
        another version."""
        text = load_blob(plan.blobs[op.text])
        extra = None if op.attachment_text is None else load_blob(plan.blobs[op.attachment_text])
        sha = layout.sha256_hex(text)
        if sha != op.meta["hashes"]["text_sha256"]:
            raise CorruptDataError(f"{op.doc_id}: spooled text no longer matches its SHA-256")
        version = op.version
        if version is None:  # no dedup verdict: continue the stored history
            versions = self.archive.doc_versions(op.site, op.doc_id)
            version = versions[-1] if versions else 1
            if versions:
                text_key = layout.doc_keys(op.site, op.doc_id, version)[0]
                if self.archive.store.checksum(text_key) != sha:
                    version += 1
        for _ in range(1000):
            text_key, meta_key = layout.doc_keys(op.site, op.doc_id, version)
            keys = {"text": text_key, "meta": meta_key}
            try:
                written = [self.archive.put(text_key, text, "text/plain; charset=utf-8",
                                            IMMUTABLE, sha)]
                if extra is not None:
                    keys["attachment_text"] = layout.doc_attachment_text_key(
                        op.site, op.doc_id, version)
                    written.append(self.archive.put(keys["attachment_text"], extra,
                                                    "text/plain; charset=utf-8", IMMUTABLE))
            except ObjectConflictError:
                logger.warning("archive: %s v%d exists with other text; writing v%d",
                               op.doc_id, version, version + 1)
                with self._lock:
                    self.stats["version_conflicts"] += 1
                version += 1
                continue
            meta = {**op.meta, "version": version, "keys": keys}
            data = dumps(meta)
            written.append(self.archive.put(meta_key, data, "application/json", IF_ABSENT,
                                            layout.sha256_hex(data)))
            return written, version
        raise ArchiveError(f"no free version for {op.doc_id}")
