"""Dedup stage: sets ``item.dedup`` (new / duplicate / near_duplicate / unchanged / changed).

Settings:

* ``GOVCRAWL_DEDUP_STATE``: state URI (default ``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``;
  ``redis://HOST:PORT/DB[?prefix=NAME:]`` for a state shared by the workers of a cluster);
  ``GOVCRAWL_DEDUP_STATE_BACKENDS``: extra ``{scheme: class path}`` backends.
* ``GOVCRAWL_DEDUP_THRESHOLD`` (0.9), ``GOVCRAWL_DEDUP_NUM_PERM`` (64), ``GOVCRAWL_DEDUP_SHINGLE``
  (5), ``GOVCRAWL_DEDUP_SHORT_TEXT`` (200), ``GOVCRAWL_DEDUP_MAX_CANDIDATES`` (200).

Durability: an item's state is written when dedup decides, and committed only once the item has
left the last pipeline (``item_scraped``), so a crash can never leave the state saying "known"
for a document the archive did not store. Commits happen whenever no item is in flight (never
while one is, since its archive write may not have happened yet); a crash loses at most the
uncommitted window, whose documents are then simply seen (and archived, idempotently) again.
If a later stage fails on the item (``item_error``), its state is
undone. The state is committed and closed when the spider closes.

The shared state is published as ``crawler.govcrawl_dedup_state`` (also reachable with
``crawler.dedup.open_state(settings)``) for incremental crawling.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals

from crawler.dedup import DedupConfig, Deduplicator, open_state
from crawler.items import ATTACHMENT, PageItem

logger = logging.getLogger(__name__)


class DedupPipeline:
    """Scrapy item pipeline (priority 300) in front of the archive."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.stats = crawler.stats
        self.state = open_state(crawler.settings).acquire()
        crawler.govcrawl_dedup_state = self.state
        self.dedup = Deduplicator(self.state, DedupConfig.from_settings(crawler.settings))
        self._in_flight = self.state.in_flight  # shared by every crawl using this state
        self._pending = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> DedupPipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.item_done, signal=signals.item_scraped)
        crawler.signals.connect(pipeline.item_done, signal=signals.item_dropped)
        crawler.signals.connect(pipeline.item_failed, signal=signals.item_error)
        return pipeline

    def close_spider(self) -> None:
        self.state.release()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or item.kind == ATTACHMENT:
            return item
        doc = item.document
        if doc is None or not doc.is_document:
            return item
        response = item.response
        item.dedup = self.dedup.check(
            item.url, doc.searchable_text(), site=item.site, index_no=doc.index_no,
            title=doc.title,
            attachments=doc.attachments, etag=response.header("ETag"),
            last_modified=response.header("Last-Modified"), requested_url=response.requested_url,
        )
        self._in_flight.add(id(item))
        self._pending += 1
        self.stats.inc_value(f"govcrawl/dedup/{item.dedup.outcome}")
        return item

    # signals --------------------------------------------------------------------------------
    def item_done(self, item: Any, **kwargs: Any) -> None:
        """The item left the pipelines (stored, or dropped by a later stage): its state may be
        committed."""
        self._in_flight.discard(id(item))
        self._maybe_commit()

    def item_failed(self, item: Any, failure: Any = None, **kwargs: Any) -> None:
        """A later stage raised on the item: forget its dedup state so it is retried next time."""
        if id(item) in self._in_flight and getattr(item, "dedup", None) is not None:
            logger.warning("undoing dedup state of %s after a pipeline error", item.url)
            self.dedup.undo(item.dedup)
            self.stats.inc_value("govcrawl/dedup/undone")
        self.item_done(item)

    def _maybe_commit(self) -> None:
        if not self._pending:
            return
        if not self._in_flight:
            self.state.commit()
            self._pending = 0
