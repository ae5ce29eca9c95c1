"""Typed archive operations and the :class:`Plan` that groups them (what one item needs written).

A plan is what the writer hands to the outbox: executed now, or spooled to disk as ``plan.json``
plus its blobs and executed later. Each operation is a frozen dataclass with a JSON tag
(:data:`OPERATIONS`); blobs are referred to by index into :attr:`Plan.blobs`, so large bodies
stay files on disk while a plan is spooled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from crawler.archive.stores import ArchiveError

Blob = bytes | Path  # an in-memory body, or a local file (a WARC segment, a spooled blob)


@dataclass(frozen=True)
class PutObject:
    """Write one object at ``key`` (``mode``: immutable / if_absent / mutable, see archive.py)."""

    tag: ClassVar[str] = "put"
    key: str
    blob: int
    sha256: str
    content_type: str
    mode: str


@dataclass(frozen=True)
class PutDocument:
    """Write ``text`` (+ ``attachment_text``: the blob of a notice's attachments' text) +
    ``meta.json`` of one document version (``version`` None: continue the stored history);
    never overwrites another version."""

    tag: ClassVar[str] = "doc"
    site: str
    doc_id: str
    version: int | None
    text: int
    meta: dict[str, Any]
    attachment_text: int | None = None


@dataclass(frozen=True)
class AppendManifest:
    """Add the JSON lines of blob ``blob`` to the manifest of ``crawl_id`` (idempotent)."""

    tag: ClassVar[str] = "manifest"
    crawl_id: str
    blob: int


@dataclass(frozen=True)
class WriteReport:
    """Store (replace) ``crawls/<crawl_id>/report.json``."""

    tag: ClassVar[str] = "report"
    crawl_id: str
    report: dict[str, Any]


Operation = PutObject | PutDocument | AppendManifest | WriteReport
#: JSON tag -> operation class (``plan.json`` keeps the tag under ``"op"``).
OPERATIONS: dict[str, type] = {cls.tag: cls for cls in (PutObject, PutDocument, AppendManifest,
                                                        WriteReport)}


def register_operation(cls: type) -> type:
    """Add an operation class (a frozen dataclass with a ``tag``) to :data:`OPERATIONS`."""
    OPERATIONS[cls.tag] = cls
    return cls


def operation_to_json(op: Any) -> dict[str, Any]:
    return {"op": op.tag, **dataclasses.asdict(op)}


def operation_from_json(data: dict[str, Any]) -> Any:
    fields = dict(data)
    tag = fields.pop("op", None)
    cls = OPERATIONS.get(tag)  # type: ignore[arg-type]
    if cls is None:
        raise ArchiveError(f"unknown archive operation {tag!r}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ArchiveError(f"malformed archive operation {tag!r}: {exc}") from None


@dataclass
class Plan:
    """The operations for one item (or segment, manifest, report) and the blobs they refer to.

    ``entry`` is the item's manifest line without its ``objects``; the executor adds those.
    """

    archive: str
    crawl_id: str
    ops: list[Any]
    blobs: list[Blob] = field(default_factory=list)
    entry: dict[str, Any] | None = None
    #: The item's dedup verdict (``DedupResult`` fields): undone if the plan can never be written.
    dedup: dict[str, Any] | None = None

    def add_blob(self, data: Blob) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def to_json(self) -> dict[str, Any]:
        return {"archive": self.archive, "crawl_id": self.crawl_id, "entry": self.entry,
                "nblobs": len(self.blobs), "ops": [operation_to_json(op) for op in self.ops],
                "dedup": self.dedup}

    @classmethod
    def from_json(cls, data: dict[str, Any], blobs: list[Blob]) -> Plan:
        if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
            raise ArchiveError("malformed plan: no operations")
        return cls(archive=data.get("archive") or "", crawl_id=data.get("crawl_id") or "",
                   ops=[operation_from_json(op) for op in data["ops"]], blobs=blobs,
                   entry=data.get("entry"), dedup=data.get("dedup"))

    def urls(self) -> list[str]:
        """The page URLs this plan archives (for messages about it)."""
        entry = self.entry or {}
        return [u for u in (entry.get("url"), entry.get("final_url")) if u]
