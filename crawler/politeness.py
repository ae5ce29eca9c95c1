"""Honour robots.txt ``Crawl-delay``, which Scrapy reads but does not act on.

When a host's robots.txt asks for a delay, that host's download slot never goes faster, whatever
AutoThrottle decides (its adjustment runs first; the floor is put back after it). Very long delays
are capped by ``GOVCRAWL_MAX_CRAWL_DELAY`` (seconds, default 30), as Heritrix caps them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object

logger = logging.getLogger(__name__)


def robots_crawl_delay(crawler: Any, body: bytes) -> float | None:
    """The ``Crawl-delay`` a robots.txt ``body`` asks of our user agent (``ROBOTSTXT_PARSER``,
    ``ROBOTSTXT_USER_AGENT`` or ``USER_AGENT``), capped by ``GOVCRAWL_MAX_CRAWL_DELAY``; None when
    it asks none or cannot be read (an unreadable robots.txt is Scrapy's to report, not ours)."""
    settings = crawler.settings
    user_agent = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")
    try:
        parser = load_object(settings.get("ROBOTSTXT_PARSER")).from_crawler(crawler, body)
        delay = parser.crawl_delay(user_agent)
    except Exception:
        return None
    if not delay:
        return None
    return min(float(delay), settings.getfloat("GOVCRAWL_MAX_CRAWL_DELAY", 30.0))


def is_robots_txt(url: str) -> bool:
    return urlsplit(url).path == "/robots.txt"


class CrawlDelayMiddleware:
    """Downloader middleware: per-host minimum delay from robots.txt ``Crawl-delay``."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.delays: dict[str, float] = {}  # download slot key -> minimum delay

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlDelayMiddleware:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured("ROBOTSTXT_OBEY is off")
        middleware = cls(crawler)
        crawler.signals.connect(middleware.enforce, signal=signals.response_downloaded)
        return middleware

    def process_response(self, request: Any, response: Any) -> Any:
        if is_robots_txt(request.url) and response.status == 200:
            delay = robots_crawl_delay(self.crawler, response.body)
            if delay:
                key = self.crawler.engine.downloader.get_slot_key(request)
                self.delays[key] = delay
                self.crawler.stats.inc_value("govcrawl/politeness/crawl_delay_hosts")
                logger.info("robots.txt of %s asks for Crawl-delay %s s: honoured", key, delay)
                self._apply(key)
        return response

    def enforce(self, response: Any, request: Any, spider: Any = None) -> None:
        """After each download (and AutoThrottle's adjustment): restore the host's floor."""
        if self.delays:
            self._apply(self.crawler.engine.downloader.get_slot_key(request))

    def _apply(self, key: str) -> None:
        delay = self.delays.get(key)
        slot = self.crawler.engine.downloader.slots.get(key)
        if delay and slot is not None and slot.delay < delay:
            slot.delay = delay
