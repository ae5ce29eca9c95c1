"""Scrapy add-ons of the project (``ADDONS`` in :mod:`crawler.settings`)."""

from __future__ import annotations

from typing import Any

from scrapy.settings import SETTINGS_PRIORITIES

from crawler.items import crawl_id


class CrawlId:
    """Makes the crawl id once per crawler, before its settings freeze: ``GOVCRAWL_CRAWL_ID``
    (kept when given, e.g. ``-s GOVCRAWL_CRAWL_ID=...``), else start time + spider name. Every
    component reads that setting (:func:`crawler.items.crawl_id`)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlId:
        return cls(crawler)

    def update_settings(self, settings: Any) -> None:
        if not settings.get("GOVCRAWL_CRAWL_ID"):
            # the id the spider took when it was made (before the add-ons), at the priority of
            # the empty default (the project's): below it the add-on's value would not take
            priority = max(settings.getpriority("GOVCRAWL_CRAWL_ID") or 0,
                           SETTINGS_PRIORITIES["addon"])
            settings.set("GOVCRAWL_CRAWL_ID", crawl_id(self.crawler), priority=priority)


class Cluster:
    """With ``GOVCRAWL_REDIS_URL`` set, the crawl joins the cluster crawl of its site on that Redis
    (:mod:`crawler.cluster`): scrapy-redis' dupefilter, our leased scheduler, and the dedup state
    in the same Redis unless ``GOVCRAWL_DEDUP_STATE`` names another. Without it nothing changes.

    Each worker's part of the crawl has a crawl id of its own (:func:`crawler.items.new_crawl_id`).
    """

    @classmethod
    def from_crawler(cls, crawler: Any) -> Cluster:
        return cls()

    def update_settings(self, settings: Any) -> None:
        url = settings.get("GOVCRAWL_REDIS_URL")
        if not url:
            return
        # host leases: politeness across the workers (crawler.cluster_politeness)
        settings.set("DOWNLOADER", "crawler.cluster_politeness.ClusterDownloader",
                     priority="addon")
        settings.set("SCHEDULER", "crawler.cluster.ClusterScheduler", priority="addon")
        settings.set("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter",
                     priority="addon")
        settings.set("SCHEDULER_DUPEFILTER_KEY", "govcrawl:%(spider)s:dupefilter",
                     priority="addon")
        settings.set("REDIS_URL", url, priority="addon")
        if not settings.get("GOVCRAWL_DEDUP_STATE"):
            settings.set("GOVCRAWL_DEDUP_STATE", url, priority="addon")
