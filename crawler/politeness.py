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


class CrawlDelayMiddleware:
    """Downloader middleware: per-host minimum delay from robots.txt ``Crawl-delay``."""

    def __init__(self, crawler: Any, max_delay: float):
        self.crawler = crawler
        self.max_delay = max_delay
        self.parser_class = load_object(crawler.settings.get("ROBOTSTXT_PARSER"))
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get(
            "USER_AGENT")
        self.delays: dict[str, float] = {}  # download slot key -> minimum delay

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlDelayMiddleware:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured("ROBOTSTXT_OBEY is off")
        middleware = cls(crawler, crawler.settings.getfloat("GOVCRAWL_MAX_CRAWL_DELAY", 30.0))
        crawler.signals.connect(middleware.enforce, signal=signals.response_downloaded)
        return middleware

    def process_response(self, request: Any, response: Any) -> Any:
        if urlsplit(request.url).path == "/robots.txt" and response.status == 200:
            try:
                parser = self.parser_class.from_crawler(self.crawler, response.body)
                delay = parser.crawl_delay(self.user_agent)
            except Exception:  # an unreadable robots.txt is Scrapy's to report, not ours
                delay = None
            if delay:
                delay = min(float(delay), self.max_delay)
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
