"""Data passed between spiders, pipelines and the archive.

A spider yields one :class:`PageItem` per document it wants archived (an article, possibly spread
over several pages, or an attachment). The pipelines then fill it in, in order:

``ExtractionPipeline`` sets ``document``, ``DedupPipeline`` sets ``dedup``, ``ArchivePipeline`` sets
``archived``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

ARTICLE = "article"
ATTACHMENT = "attachment"

#: Dedup outcomes, see ``pipelines.dedup``.
NEW, DUPLICATE, NEAR_DUPLICATE, UNCHANGED, CHANGED = (
    "new",
    "duplicate",
    "near_duplicate",
    "unchanged",
    "changed",
)
OUTCOMES = (NEW, DUPLICATE, NEAR_DUPLICATE, UNCHANGED, CHANGED)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp (seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: ``Request.meta`` key where the archive notes a downloaded exchange it wrote to the WARC:
#: ``{"warc": {key, offset, length}, "fetched_at": ...}`` (see pipelines/archive.py).
RECORDED_META = "govcrawl_recorded"


@dataclass
class ResponseRecord:
    """One HTTP exchange, kept raw so that text can be re-extracted later (and written to WARC)."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    method: str = "GET"
    fetched_at: str = field(default_factory=utc_now)
    requested_url: str | None = None  # differs from ``url`` after redirects
    #: Where the archive already wrote this exchange as downloaded (WARC key/offset/length),
    #: set by the archive's download hook; None when it was not recorded.
    warc: dict[str, Any] | None = None

    def header(self, name: str) -> str | None:
        """The first response header called ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @classmethod
    def from_response(cls, response: Any, request: Any = None) -> ResponseRecord:
        """Build a record from a Scrapy response (``request``: when ``response.request`` is not
        set yet, as in the downloader's signals)."""

        def pairs(headers: Any) -> list[tuple[str, str]]:
            out = []
            for key, values in headers.items():
                k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
                for v in values:
                    out.append((k, v.decode("latin-1") if isinstance(v, bytes) else str(v)))
            return out

        request = request if request is not None else response.request
        requested = None
        recorded: dict[str, Any] = {}
        if request is not None:
            redirects = request.meta.get("redirect_urls") or []
            requested = redirects[0] if redirects else None
            recorded = request.meta.get(RECORDED_META) or {}
        extra = {"fetched_at": recorded["fetched_at"]} if recorded.get("fetched_at") else {}
        return cls(
            url=response.url,
            status=response.status,
            headers=pairs(response.headers),
            body=response.body,
            request_headers=pairs(request.headers) if request is not None else [],
            method=request.method if request is not None else "GET",
            requested_url=requested,
            warc=recorded.get("warc"),
            **extra,
        )


@dataclass
class Document:
    """What extraction makes of a page: clean text and the page's metadata.

    ``to_dict()`` is the JSON contract of ``govcrawl extract --json`` (documented in README).
    """

    url: str
    text: str = ""
    title: str | None = None
    published: str | None = None  # 发布日期, YYYY-MM-DD
    #: where ``published`` was read: ``page`` (visible date), ``meta`` (<meta>), ``url``, or None
    published_from: str | None = None
    written: str | None = None  # 成文日期, YYYY-MM-DD
    source: str | None = None  # 来源
    publisher: str | None = None  # 发布机构 / 发文机关
    index_no: str | None = None  # 索引号
    doc_no: str | None = None  # 文号
    topic: str | None = None  # 主题分类
    attachments: list[dict[str, str]] = field(default_factory=list)  # [{url, name}]
    spam: list[str] = field(default_factory=list)  # removed spam strings
    removed: dict[str, int] = field(
        default_factory=lambda: {"boilerplate": 0, "spam": 0, "repeated": 0}
    )
    findings: list[str] = field(default_factory=list)  # page-level: title_hijack, ...
    meta: dict[str, str] = field(default_factory=dict)  # SiteIDCode, ColumnName, ...
    is_document: bool = True  # False for challenge pages and pages without content
    challenge: str | None = None  # anti-bot vendor of a challenge page (crawler.challenges)
    format: str | None = None  # what the bytes were: html, pdf, docx, doc, xlsx, xls ...
    pages: int | None = None  # a PDF's pages
    sheets: int | None = None  # a spreadsheet's sheets
    needs_ocr: bool = False  # a PDF without a text layer (scanned)
    #: A notice whose body is only attachments: their text (searchable), apart from ``text``.
    attachment_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def searchable_text(self) -> str:
        """The body, and the attachments' text of a notice that is only its attachments: what
        dedup compares and versions."""
        return "\n".join(t for t in (self.text, self.attachment_text) if t)


@dataclass
class DedupResult:
    """The dedup stage's verdict on a document."""

    outcome: str  # one of OUTCOMES
    doc_id: str  # stable identity: same URL or same 索引号 -> same doc_id
    version: int  # 1 for a new document, +1 for each change
    text_hash: str  # hash of the normalised text
    canonical_id: str | None = None  # duplicate / near_duplicate: the doc it matches
    similarity: float | None = None  # near_duplicate: estimated Jaccard
    urls: list[str] = field(default_factory=list)  # all URLs known for this text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PageItem:
    """One document to archive, as a spider yields it."""

    site: str
    kind: str  # ARTICLE or ATTACHMENT
    response: ResponseRecord
    more_pages: list[ResponseRecord] = field(default_factory=list)  # pages 2..n of an article
    crawl_id: str = ""
    found_on: str | None = None  # URL of the page that linked to it
    link_text: str | None = None  # anchor text of that link (attachment name)
    attachment_files: dict[str, str] = field(default_factory=dict)  # article: att. URL -> sha256
    document: Document | None = None
    dedup: DedupResult | None = None
    archived: dict[str, Any] | None = None  # what the archive wrote (keys, bytes)
    #: kind attachment: its text (crawler.extract.attachments.AttachmentText), or why it failed
    attachment_text: Any = None
    attachment_error: str | None = None
    #: kind article: the attachments its ``document.attachment_text`` came from [{url, sha256,
    #: format}]
    attachment_sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.response.url


def new_crawl_id(name: str, worker: bool = False) -> str:
    """A fresh crawl id: UTC start time + spider name (``20240701T060000Z-liuzhi``); a cluster
    worker's part of a crawl gets ``-w<8 hex>`` too (workers started in the same second would
    share one id: colliding WARC segments, each rewriting the others' manifest)."""
    stamp = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{name}"
    return f"{stamp}-w{uuid.uuid4().hex[:8]}" if worker else stamp


#: Ids of crawlers built without the project's ``ADDONS`` (bare ``get_crawler`` in tests).
_UNSET_IDS: WeakKeyDictionary[Any, str] = WeakKeyDictionary()


def crawl_id(crawler: Any) -> str:
    """The id of the crawl ``crawler`` runs: its ``GOVCRAWL_CRAWL_ID`` setting, else made here
    once per crawler (the spider asks before the add-ons run; :class:`crawler.addons.CrawlId`
    then sets this same id), so every component of one crawl agrees."""
    value = crawler.settings.get("GOVCRAWL_CRAWL_ID")
    if value:
        return str(value)
    if crawler not in _UNSET_IDS:  # a crawler outside the project settings (no add-on)
        name = getattr(getattr(crawler, "spidercls", None), "name", None) or "crawl"
        _UNSET_IDS[crawler] = new_crawl_id(
            name, worker=bool(crawler.settings.get("GOVCRAWL_REDIS_URL")))
    return _UNSET_IDS[crawler]
