"""Scrapy extensions: progress while crawling, and the crawl report at the end."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from scrapy import signals
from twisted.internet import task

from crawler.items import OUTCOMES, crawl_id
from crawler.report import build_report, format_table

logger = logging.getLogger(__name__)


class Progress:
    """A progress line: rewritten in place on a terminal, a log line every N seconds otherwise."""

    def __init__(self, crawler: Any, interval: float, tty: bool):
        self.crawler = crawler
        self.interval = interval
        self.tty = tty
        self._loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> Progress:
        tty = sys.stderr.isatty() and crawler.settings.getbool("GOVCRAWL_PROGRESS_TTY", True)
        interval = crawler.settings.getfloat("GOVCRAWL_PROGRESS_INTERVAL", 10.0)
        ext = cls(crawler, 1.0 if tty else interval, tty)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def line(self) -> str:
        stats = self.crawler.stats
        docs = " ".join(
            f"{o.replace('_', '-')}={stats.get_value(f'govcrawl/dedup/{o}', 0)}" for o in OUTCOMES
        )
        errors = stats.get_value("log_count/ERROR", 0)
        pages = stats.get_value("downloader/response_count", 0)
        return f"[{self.crawler.spider.name}] pages={pages} {docs} errors={errors}"

    def tick(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + self.line() + "\x1b[K")
            sys.stderr.flush()
        else:
            logger.info("progress: %s", self.line())

    def spider_opened(self, spider: Any) -> None:
        if self.interval > 0:
            self._loop = task.LoopingCall(self.tick)
            self._loop.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.tty:
            sys.stderr.write("\r" + self.line() + "\x1b[K\n")


class CrawlReport:
    """Stamps the crawl id into the stats and, at the end, logs the crawl report and archives it."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.crawler.stats.set_value("govcrawl/crawl_id", crawl_id(self.crawler))

    def spider_closed(self, spider: Any, reason: str) -> None:
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", reason)
        report = build_report(spider.name, stats, crawl_id(self.crawler))
        logger.info("crawl report:\n%s", format_table([report]))
        self.crawler.stats.set_value("govcrawl/report", json.dumps(report, ensure_ascii=False))
        self.write(report)

    def write(self, report: dict[str, Any]) -> None:
        from crawler.archive import open_archive

        settings = self.crawler.settings
        try:
            archive = open_archive(settings.get("GOVCRAWL_ARCHIVE"), settings=settings)
            archive.write_crawl_report(report["crawl_id"], report)
        except Exception as exc:  # the report must never turn a finished crawl into a failure
            logger.error("could not write the crawl report: %s", exc)
