"""Extraction stage: turn each article's raw response(s) into a clean :class:`Document`, and
each attachment's bytes into its text (``item.attachment_text``).

Extraction is the crawl's main CPU cost. ``GOVCRAWL_EXTRACT_WORKERS`` is ``auto`` by default: as
many worker processes as CPUs this process may run on (``os.sched_getaffinity``), so the reactor
keeps downloading meanwhile and extraction uses every core. A number sets the count; 0 runs
page extraction inline on the reactor thread (quickest to start: ``govcrawl fetch`` of one URL
does that) and attachments in one thread (a long PDF must not stall the reactor).

A notice whose body is only its attachments (:func:`crawler.extract.attachments.attachment_only`)
gets their text as ``document.attachment_text``: the spider fetches an article's attachments
before it yields the article, and their results are kept here by URL for a while (bounded).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from scrapy.exceptions import DropItem

from crawler.challenges import record_challenge
from crawler.extract import extract
from crawler.extract.attachments import (
    AttachmentError,
    AttachmentText,
    add_attachment_texts,
    attachment_only,
    attachment_text,
    extract_bytes,
)
from crawler.items import ARTICLE, ATTACHMENT, Document, PageItem, ResponseRecord
from crawler.urls import canonicalize

#: Attachment results kept for the articles that link them: at most this many, this many chars.
KEEP_RESULTS, KEEP_CHARS = 512, 32_000_000

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


def read_attachment(body: bytes) -> tuple[AttachmentText | None, str | None]:
    """An attachment's text (None: not a document type we read) and the error, if unreadable."""
    try:
        return attachment_text(body), None
    except AttachmentError as exc:
        return None, str(exc)


def _worker_start(crawl_pid: int) -> None:
    """Worker start-up: yield the CPU to the crawl process, whose work (downloading, dedup,
    archiving) is serial; workers only soak up what it leaves free. And leave with the crawl:
    a worker of a crawl that was SIGKILLed would otherwise wait for tasks forever (with its
    forkserver, which the worker keeps alive), holding the crawl's stdout and stderr open."""
    os.nice(5)
    threading.Thread(target=_exit_with, args=(crawl_pid,), daemon=True,
                     name="govcrawl-exit-with-crawl").start()


def _exit_with(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            time.sleep(2)
    select.select([fd], [], [])  # readable once the process has exited
    os._exit(0)


class WorkerPool:
    """Extraction processes shared by every crawler of this process.

    ``crawl --all`` runs one crawler per site in one process: a pool each would start
    sites × workers processes (17 × 2 here, a gigabyte of idle interpreters, each importing
    trafilatura on its first page). Crawlers :meth:`acquire` the pool of their worker count and
    :meth:`release` it; the last one out shuts it down. Workers fork from a server that has
    imported the extraction code once. A pool broken by a dying worker (a hostile file, the
    OOM killer) is replaced, and the tasks it lost are tried once more in the new one.
    """

    _shared: ClassVar[dict[int, WorkerPool]] = {}

    def __init__(self, workers: int):
        self.workers = workers
        self.users = 0
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["pipelines.extract"])
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_start,
                                   initargs=(os.getpid(),))

    @classmethod
    def acquire(cls, workers: int) -> WorkerPool:
        pool = cls._shared.get(workers)
        if pool is None:
            pool = cls._shared[workers] = cls(workers)
        pool.users += 1
        return pool

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self._shared.pop(self.workers, None)
            self._pool.shutdown(wait=True, cancel_futures=False)

    @property
    def executor(self) -> Executor:
        return self._pool

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in a worker process."""
        loop = asyncio.get_running_loop()
        pool = self._pool
        try:
            return await loop.run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            if self._pool is pool:  # the first task to see it replaces the pool
                logger.warning("an extraction worker died: starting new workers")
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
            return await loop.run_in_executor(self._pool, function, *args)


class ExtractionPipeline:
    """Sets ``item.document``; drops pages that are not documents (challenge pages, empty pages)."""

    def __init__(self, crawler: Any, workers: int = 0):
        self.crawler = crawler
        self.stats = crawler.stats
        self.workers = workers
        self._pool: WorkerPool | None = None
        self._threads: ThreadPoolExecutor | None = None
        #: canonical attachment URL -> future of (sha256, AttachmentText | None)
        self._results: OrderedDict[str, asyncio.Future[Any]] = OrderedDict()
        self._kept_chars = 0

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
            self._pool = WorkerPool.acquire(self.workers)

    def close_spider(self) -> None:
        if self._pool is not None:
            self._pool.release()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        self._results.clear()

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` off the reactor thread: in a worker process, else a thread."""
        if self._pool is not None:
            return await self._pool.run(function, *args)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(1, thread_name_prefix="govcrawl-attachments")
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    def _keep(self, urls: set[str], future: asyncio.Future[Any]) -> None:
        for url in urls:
            self._results[url] = future
            self._results.move_to_end(url)
        while len(self._results) > KEEP_RESULTS or (self._kept_chars > KEEP_CHARS
                                                     and len(self._results) > 1):
            _, old = self._results.popitem(last=False)
            last = not any(kept is old for kept in self._results.values())
            if last and old.done() and old.result()[1] is not None:
                self._kept_chars -= old.result()[1].chars

    async def _attachment(self, item: PageItem) -> PageItem:
        """Set ``item.attachment_text`` (or ``item.attachment_error``), off the reactor thread."""
        from crawler.archive.layout import sha256_hex

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        record = item.response
        self._keep({canonicalize(u) for u in (record.url, record.requested_url) if u}, future)
        result, error = None, "not read"
        try:
            result, error = await self._run(read_attachment, record.body)
        except Exception as exc:  # a worker that died on a hostile file: not the crawl
            result, error = None, f"{type(exc).__name__}: {exc}"
        finally:  # an article may be waiting for it
            future.set_result((sha256_hex(record.body), result))
        item.attachment_text, item.attachment_error = result, error
        if result is not None:
            if any(kept is future for kept in self._results.values()):
                self._kept_chars += result.chars
            self.stats.inc_value("govcrawl/attachments/text")
            if result.needs_ocr:
                self.stats.inc_value("govcrawl/attachments/needs_ocr")
        elif error is not None:
            self.stats.inc_value("govcrawl/attachments/unreadable")
            logger.warning("attachment %s: %s", record.url, error)
        return item

    async def _attachment_texts(self, item: PageItem, doc: Document) -> None:
        """A notice that is only its attachments: their text, from the results kept by URL."""
        found = []
        for link in doc.attachments:
            future = self._results.get(canonicalize(link["url"]))
            if future is not None:  # else not fetched (off-site, failed, or no longer kept)
                found.append((link["url"], *await future))
        item.attachment_sources += add_attachment_texts(doc, found)
        if doc.attachment_text:
            self.stats.inc_value("govcrawl/documents/attachment_only")

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, PageItem) and item.kind == ATTACHMENT:
            return await self._attachment(item)
        if not isinstance(item, PageItem) or item.kind != ARTICLE:
            return item
        pages = [item.response, *item.more_pages]
        if self._pool is None:
            doc = extract_pages(pages)
        else:
            doc = await self._pool.run(extract_pages, pages)
        item.document = doc
        if doc.format == "html" and not doc.challenge and attachment_only(doc):
            await self._attachment_texts(item, doc)
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
