"""Extraction stage: turn each article's raw response(s) into a clean :class:`Document`.

Extraction is the crawl's main CPU cost. ``GOVCRAWL_EXTRACT_WORKERS`` is ``auto`` by default: as
many worker processes as CPUs this process may run on (``os.sched_getaffinity``), so the reactor
keeps downloading meanwhile and extraction uses every core. A number sets the count; 0 runs
extraction inline on the reactor thread (quickest to start: ``govcrawl fetch`` of one URL does
that).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from scrapy.exceptions import DropItem

from crawler.challenges import record_challenge
from crawler.extract import extract
from crawler.extract.attachments import extract_bytes
from crawler.items import ARTICLE, Document, PageItem, ResponseRecord

logger = logging.getLogger(__name__)


def extract_pages(pages: list[ResponseRecord]) -> Document:
    """Extract an article that may span several pages: metadata from page 1, text from all.

    The first page's type comes from its bytes: an image, archive or executable served as a page
    is not a document; a PDF or Word file served as one gives its text.
    """
    first, *rest = pages
    doc = extract_bytes(first.body, first.url, first.headers, first.status)
    if doc.format != "html":
        return doc
    for page in rest:
        part = extract(page.body, page.url, page.headers, page.status)
        if part.text:
            doc.text = f"{doc.text}\n{part.text}" if doc.text else part.text
        known = {a["url"] for a in doc.attachments}
        doc.attachments += [a for a in part.attachments if a["url"] not in known]
        doc.spam += part.spam
        for key, count in part.removed.items():
            doc.removed[key] = doc.removed.get(key, 0) + count
    if rest:
        doc.meta["pages"] = str(len(pages))
    return doc


def extract_workers(value: Any) -> int:
    """Worker processes for a ``GOVCRAWL_EXTRACT_WORKERS`` value: ``auto`` (or unset) = the CPUs
    this process may use, else a whole number >= 0. Raises ValueError for anything else."""
    text = str(value).strip().lower() if value is not None else ""
    if text in ("", "auto"):
        return len(os.sched_getaffinity(0))
    try:
        workers = int(text)
    except ValueError:
        workers = -1
    if workers < 0:
        raise ValueError(f"GOVCRAWL_EXTRACT_WORKERS must be 'auto' or a number >= 0, got {value!r}")
    return workers


def _lower_priority() -> None:
    """Worker start-up: yield the CPU to the crawl process, whose work (downloading, dedup,
    archiving) is serial; workers only soak up what it leaves free."""
    os.nice(5)


class ExtractionPipeline:
    """Sets ``item.document``; drops pages that are not documents (challenge pages, empty pages)."""

    def __init__(self, crawler: Any, workers: int = 0):
        self.crawler = crawler
        self.stats = crawler.stats
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ExtractionPipeline:
        workers = extract_workers(crawler.settings.get("GOVCRAWL_EXTRACT_WORKERS"))
        return cls(crawler, workers=workers)

    def open_spider(self) -> None:
        self.stats.set_value("govcrawl/extract_workers", self.workers)
        if self.workers:
            logger.info("extraction in %d worker processes", self.workers)
        else:
            logger.info("extraction inline (GOVCRAWL_EXTRACT_WORKERS=0)")
        if self.workers > 0:
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=_lower_priority)

    def close_spider(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or item.kind != ARTICLE:
            return item
        pages = [item.response, *item.more_pages]
        if self._pool is None:
            doc = extract_pages(pages)
        else:
            doc = await asyncio.get_running_loop().run_in_executor(self._pool, extract_pages, pages)
        item.document = doc
        self.stats.inc_value("govcrawl/documents/extracted")
        if doc.challenge:
            record_challenge(self.stats, doc.challenge, item.response.status, item.url)
        if not doc.is_document:
            kind = ("challenge" if doc.challenge else
                    "binary" if "binary_not_document" in doc.findings else "no_content")
            self.stats.inc_value(f"govcrawl/not_document/{kind}")
            what = f"{kind}: {doc.format}" if kind == "binary" else kind
            raise DropItem(f"not a document ({what}): {item.url}")
        if doc.spam:
            self.stats.inc_value("govcrawl/spam_removed", len(doc.spam))
            self.stats.inc_value("govcrawl/pages_with_spam")
        for key, count in doc.removed.items():
            if count:
                self.stats.inc_value(f"govcrawl/removed/{key}", count)
        return item
