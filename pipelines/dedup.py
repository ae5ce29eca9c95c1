"""Dedup stage: sets ``item.dedup`` (new / duplicate / near_duplicate / unchanged / changed).

Settings:

* ``GOVCRAWL_DEDUP_STATE``: state URI (default ``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``;
  ``redis://HOST:PORT/DB[?prefix=NAME:]`` for a state shared by the workers of a cluster);
  ``GOVCRAWL_DEDUP_STATE_BACKENDS``: extra ``{scheme: class path}`` backends.
* ``GOVCRAWL_DEDUP_THRESHOLD`` (0.9), ``GOVCRAWL_DEDUP_NUM_PERM`` (64), ``GOVCRAWL_DEDUP_SHINGLE``
  (5), ``GOVCRAWL_DEDUP_SHORT_TEXT`` (200), ``GOVCRAWL_DEDUP_MAX_CANDIDATES`` (200).

The state, the items in flight and the commits belong to the crawler's
:class:`crawler.dedup.service.StateService` (durability rules in that module): this stage only
decides, through it.
"""

from __future__ import annotations

from typing import Any

from crawler.dedup.service import StateService
from crawler.items import ATTACHMENT, PageItem


class DedupPipeline:
    """Scrapy item pipeline (priority 300) in front of the archive."""

    def __init__(self, crawler: Any, service: StateService | None):
        self.crawler = crawler
        self.stats = crawler.stats
        assert service is not None
        self.service = service

    @classmethod
    def from_crawler(cls, crawler: Any) -> DedupPipeline:
        return cls(crawler, StateService.of(crawler))

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or item.kind == ATTACHMENT:
            return item
        doc = item.document
        if doc is None or not doc.is_document:
            return item
        await self.service.admitted()
        response = item.response
        item.dedup = await self.service.check(
            item, text=doc.searchable_text(), site=item.site, index_no=doc.index_no,
            title=doc.title, attachments=doc.attachments, etag=response.header("ETag"),
            last_modified=response.header("Last-Modified"), requested_url=response.requested_url,
        )
        self.stats.inc_value(f"govcrawl/dedup/{item.dedup.outcome}")
        return item
