"""Archive stage (priority 500): writes each item to the archive and sets ``item.archived``.

Settings:

* ``GOVCRAWL_ARCHIVE``: a directory, ``file://`` URI or ``s3://bucket/prefix/`` (default
  ``archive``). A bad URI or a missing bucket fails the crawl at start with a clear message.
* S3: Scrapy's ``AWS_ENDPOINT_URL`` (or the ``AWS_ENDPOINT_URL`` environment variable),
  ``AWS_REGION_NAME``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``
  (default: the standard AWS credential chain), ``AWS_VERIFY``; ``GOVCRAWL_S3_CHECKSUM``
  (``sha256`` | ``md5``), ``GOVCRAWL_S3_ADDRESSING_STYLE`` (``auto``/``path``/``virtual``),
  ``GOVCRAWL_S3_RETRY_MODE`` (botocore's retry mode, ``adaptive``: it also slows down on
  503 SlowDown), ``GOVCRAWL_S3_MAX_ATTEMPTS`` (5, in all), ``GOVCRAWL_S3_CONNECT_TIMEOUT`` (5 s),
  ``GOVCRAWL_S3_READ_TIMEOUT`` (60 s), ``GOVCRAWL_S3_MULTIPART_THRESHOLD`` (16 MiB: objects
  this large are streamed by multipart upload) and ``GOVCRAWL_S3_MULTIPART_CHUNKSIZE`` (8 MiB).
  botocore's retries are the only ones; when they give up, the item is spooled to
  ``<GOVCRAWL_STATE_DIR>/spool/``.
* ``GOVCRAWL_ARCHIVE_PROBE_INTERVAL`` (15 s): while the store is down, how often an item checks
  whether it is back (and then flushes the spool).
* ``GOVCRAWL_ARCHIVE_THREADS`` (4): writes run in this many threads, off the reactor.
* ``GOVCRAWL_ARCHIVE_WARC_MAX_BYTES`` (100 MiB): WARC segment size before rotation.

Every exchange the downloader completes (list pages, robots.txt, redirects, errors, challenge
pages, articles, attachments) is written to the crawl's WARC as received, from Scrapy's
``response_downloaded`` signal; an item's pages then point at those records.
A spool entry that can never be written (damaged on disk, or conflicting with the archive) is
moved to ``<GOVCRAWL_STATE_DIR>/spool/quarantine/`` with the reason, and logged as an error; its
dedup verdict is undone in the crawler's state (:class:`crawler.dedup.service.StateService`), so
that the document is fetched again.

Stats: ``govcrawl/archive/objects``, ``govcrawl/archive/bytes`` (objects written, not counting
ones already there), ``govcrawl/archive/attachments``, ``govcrawl/archive/existing``,
``govcrawl/archive/spooled``, ``govcrawl/archive/flushed``, ``govcrawl/archive/spool_entries``
(left at close), ``govcrawl/errors/archive_store``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy import signals
from twisted.internet import reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.archive import ArchiveWriter, open_archive
from crawler.archive.outbox import SpoolFullError
from crawler.dedup.service import StateService
from crawler.items import ATTACHMENT, RECORDED_META, PageItem, ResponseRecord, crawl_id

logger = logging.getLogger(__name__)


class ArchivePipeline:
    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        # Opening validates the URI: a bad one raises ArchiveConfigError before the crawl starts.
        self.archive = open_archive(settings.get("GOVCRAWL_ARCHIVE") or "archive",
                                    settings=settings)
        self.state_dir = Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
        self.threads = max(1, settings.getint("GOVCRAWL_ARCHIVE_THREADS", 4))
        self.probe_interval = settings.getfloat("GOVCRAWL_ARCHIVE_PROBE_INTERVAL", 15.0)
        self.warc_max_bytes = settings.getint("GOVCRAWL_ARCHIVE_WARC_MAX_BYTES", 100 * 2**20)
        self.writer: ArchiveWriter | None = None
        self.pool: ThreadPool | None = None
        self.state = StateService.of(crawler, required=False)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ArchivePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.response_downloaded, signal=signals.response_downloaded)
        return pipeline

    def response_downloaded(self, response: Any, request: Any, spider: Any = None) -> None:
        """Write every downloaded exchange to the WARC, as received (the complete raw record)."""
        writer = self.writer
        if writer is None or writer.closed or writer._closing:
            return
        rec = ResponseRecord.from_response(response, request)
        request.meta[RECORDED_META] = {"warc": writer.write_exchange(rec),
                                       "fetched_at": rec.fetched_at}
        self.stats.inc_value("govcrawl/archive/warc_records")

    def _in_thread(self, fn: Any, *args: Any) -> Any:
        from scrapy.utils.defer import maybe_deferred_to_future

        assert self.pool is not None
        return maybe_deferred_to_future(deferToThreadPool(reactor, self.pool, fn, *args))

    async def open_spider(self) -> None:
        self.pool = ThreadPool(minthreads=0, maxthreads=self.threads, name="govcrawl-archive")
        self.pool.start()
        # its threads are not daemons: a crawl whose close never ran must not hang the exit
        reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)
        self.writer = ArchiveWriter(
            self.archive, self.state_dir, crawl_id(self.crawler),
            warc_max_bytes=self.warc_max_bytes, probe_interval=self.probe_interval,
        )
        await self._in_thread(self.writer.open)
        self._forget()
        logger.info("archiving to %s (crawl %s)", self.archive.uri, self.writer.crawl_id)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or self.writer is None:
            return item
        if not item.crawl_id:
            item.crawl_id = self.writer.crawl_id
        try:
            archived = await self._in_thread(self.writer.write, item)
        except SpoolFullError as exc:
            self._stop(exc)
            raise  # an item error: the dedup stage forgets the item, the next crawl fetches it
        finally:
            self._forget()
        self.stats.inc_value("govcrawl/archive/objects", archived["objects"])
        self.stats.inc_value("govcrawl/archive/bytes", archived["bytes"])
        if archived["spooled"]:
            self.stats.inc_value("govcrawl/archive/spooled")
        if item.kind == ATTACHMENT:
            self.stats.inc_value("govcrawl/archive/attachments")
        return item

    def _forget(self) -> None:
        """Undo the dedup verdicts of spool entries the writer set aside as unwritable."""
        assert self.writer is not None
        forgotten = self.writer.take_forgotten()
        if forgotten and self.state is not None:
            self.state.forget(forgotten)

    def _stop(self, exc: SpoolFullError) -> None:
        """Neither the store nor the spool takes writes: say so once and stop the crawl (every
        further item would fail the same way)."""
        self.stats.inc_value("govcrawl/errors/archive_spool_full")
        spider = self.crawler.spider
        if getattr(spider, "error", None):
            return
        spider.error = f"archive: {exc}"
        logger.error("%s; stopping the crawl", spider.error)
        from scrapy.utils.defer import deferred_from_coro

        deferred_from_coro(self.crawler.engine.close_spider_async(reason="archive_spool_full"))

    def _stop_pool(self) -> None:
        if self.pool is not None and not self.pool.joined:
            self.pool.stop()

    async def close_spider(self) -> None:
        if self.writer is None:
            return
        try:
            summary = await self._in_thread(self.writer.close)
        except SpoolFullError as exc:
            # The work directory (WARC segments, manifest journal) stays for the next run.
            self.stats.inc_value("govcrawl/errors/archive_spool_full")
            spider = self.crawler.spider
            if not getattr(spider, "error", None):
                spider.error = f"archive: {exc}"
            logger.error("archive: %s; the WARC and manifest of this crawl stay in %s for the "
                         "next run", exc, self.writer.work)
            return
        finally:
            self._forget()
            self._stop_pool()
        # The writer's totals include what close() wrote (WARC segments, manifest).
        for name in ("objects", "bytes", "existing", "spooled", "flushed", "spool_entries"):
            self.stats.set_value(f"govcrawl/archive/{name}", int(summary.get(name, 0)))
        if summary.get("store_errors"):
            self.stats.set_value("govcrawl/errors/archive_store", int(summary["store_errors"]))
        if summary.get("spool_entries"):
            logger.warning("archive: %d entries left in the spool %s; they are uploaded by the "
                           "next crawl or `govcrawl archive flush`", summary["spool_entries"],
                           self.writer.spool.dir)
        self.archive.close()
