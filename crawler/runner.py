"""Run spiders in this process and report what each crawl did."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import IgnoreRequest
from scrapy.settings import Settings
from scrapy.utils.project import get_project_settings
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

#: Settings that are also read from the environment (besides every declared ``GOVCRAWL_*``).
ENV_SETTINGS = ("AWS_ENDPOINT_URL",)
#: ``GOVCRAWL_*`` names read from the environment only, never settings.
ENV_ONLY = ("GOVCRAWL_PROFILES", "GOVCRAWL_DEBUG")


def env_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The settings given as environment variables: every ``GOVCRAWL_*`` declared in
    :mod:`crawler.settings`, and ``AWS_ENDPOINT_URL``. Empty values are ignored."""
    from crawler import settings as declared

    environ = os.environ if environ is None else environ
    names = [n for n in vars(declared) if n.startswith("GOVCRAWL_")] + list(ENV_SETTINGS)
    return {n: environ[n] for n in names if environ.get(n)}


def project_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """govcrawl's Scrapy settings, the one builder every command uses: the defaults of
    :mod:`crawler.settings`, then settings given as environment variables
    (:func:`env_settings`), then ``overrides`` (the command line)."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    overrides = {**env_settings(), **(overrides or {})}
    if "GOVCRAWL_CONTACT_URL" in overrides and "USER_AGENT" not in overrides:
        overrides["USER_AGENT"] = f"govcrawl/0.1 (+{overrides['GOVCRAWL_CONTACT_URL']})"
    settings.setdict(overrides, priority="cmdline")
    return settings


#: Request meta key marking a request dropped unsent at a stop.
STOPPED = "govcrawl_stopped_unsent"


class CrawlStopped(IgnoreRequest):
    """A request dropped unsent because the crawl was told to stop (SIGTERM, Ctrl-C); it is
    not known to the state, so the next run fetches it."""


def stopped_unsent(request: Request) -> bool:
    """True for a request dropped by :meth:`GovcrawlProcess.stop` before it was sent."""
    return bool(request.meta.get(STOPPED))



class GovcrawlProcess(CrawlerProcess):
    """Scrapy's process, whose graceful stop does not send what is still queued, and stops a
    crawl that is still opening.

    On SIGTERM/SIGINT Scrapy waits until every request already taken from the scheduler has
    been downloaded, which with ``DOWNLOAD_DELAY`` and 17 sites is one delay per queued
    request: a minute or more. Here the requests still waiting in a downloader slot fail with
    :class:`CrawlStopped` (quietly: the spiders do not count them); those in transfer finish,
    and items in the pipelines are archived as usual.

    A crawler told to stop while its spider is still opening (its pipelines' ``open_spider``
    running) is not stopped by Scrapy, which then stops the reactor under it: its pipelines
    were never closed and the process hung at exit on their threads. Such a crawl is stopped
    as soon as its engine starts, and the stop waits for every crawl to end.
    """

    def stop(self) -> Any:
        from scrapy.utils.defer import deferred_from_coro
        from twisted.internet import defer

        crawlers = list(self.crawlers)
        running = [c for c in crawlers if _engine_running(c)]
        dropped = sum(drop_unsent(crawler) for crawler in running)
        if dropped:
            logger.info("stopping: %d queued requests not sent (the next run fetches them)",
                        dropped)
        stops = [deferred_from_coro(crawler.stop_async()) for crawler in running]
        # Scrapy's stop of a crawler still opening only marks it stopped, and then its engine
        # cannot finish either (it waits for that stop): stop it once it runs instead
        stops += [_stop_once_running(c) for c in crawlers if c.crawling and c not in running]
        return defer.DeferredList(stops)


def _engine_running(crawler: Any) -> bool:
    engine = getattr(crawler, "_engine", None)
    return bool(engine is not None and engine.running)


def _stop_once_running(crawler: Any, poll: float = 0.05) -> Any:
    """Stop ``crawler`` as soon as its engine runs (its spider opened); fires when stopped, or
    at once if the crawl ends (fails to open) first."""
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import defer, task

    done: defer.Deferred[None] = defer.Deferred()

    def check() -> None:
        if not crawler.crawling:
            loop.stop()
            done.callback(None)
        elif _engine_running(crawler):
            loop.stop()
            drop_unsent(crawler)
            deferred_from_coro(crawler.stop_async()).chainDeferred(done)

    loop = task.LoopingCall(check)
    loop.start(poll, now=True)
    return done


def drop_unsent(crawler: Any) -> int:
    """Fail every request waiting in ``crawler``'s downloader slots; how many."""
    engine = getattr(crawler, "engine", None)
    downloader = getattr(engine, "downloader", None)
    if downloader is None:
        return 0
    dropped = 0
    for slot in list(downloader.slots.values()):
        while slot.queue:
            request, deferred = slot.queue.popleft()
            request.meta[STOPPED] = True
            deferred.errback(Failure(CrawlStopped("crawl stopped before this request was sent")))
            dropped += 1
    if dropped and crawler.stats is not None:
        crawler.stats.inc_value("govcrawl/stopped/not_sent", dropped)
    return dropped


@dataclass
class CrawlResult:
    """What one spider run left behind."""

    spider: str
    stats: dict[str, Any] = field(default_factory=dict)
    items: list[Any] = field(default_factory=list)
    error: str | None = None  # a spider-reported failure (FetchSpider.error)

    @property
    def finish_reason(self) -> str | None:
        return self.stats.get("finish_reason")


class _Collector:
    """Keeps a crawl's scraped items (signal receivers must be strongly referenced)."""

    def __init__(self, result: CrawlResult, keep_items: bool):
        self.result = result
        self.keep_items = keep_items

    def crawl_failed(self, failure: Any) -> None:
        """The crawl could not start or broke down (e.g. the archive refused us)."""
        self.result.error = failure.getErrorMessage().strip().splitlines()[0]

    def item_scraped(self, item: Any) -> None:
        if self.keep_items:
            self.result.items.append(item)


def run_spiders(
    spiders: list[tuple[str, dict[str, Any]]],
    settings: Settings,
    keep_items: bool = False,
    live: bool = False,
) -> list[CrawlResult]:
    """Run each ``(spider name, kwargs)`` concurrently in one reactor; block until all end.

    The run owns the dedup states its crawlers use: crawlers naming the same state share one
    instance (:class:`crawler.dedup.service.StateStores`)."""
    from crawler.dedup.service import StateStores

    process = GovcrawlProcess(settings)
    stores = StateStores()
    runs = []
    for name, kwargs in spiders:
        crawler = process.create_crawler(name)
        crawler.govcrawl_state_stores = stores
        result = CrawlResult(spider=name)
        collector = _Collector(result, keep_items)
        crawler.signals.connect(collector.item_scraped, signal=signals.item_scraped)
        deferred = process.crawl(crawler, **kwargs)
        deferred.addErrback(collector.crawl_failed)
        runs.append((crawler, result, collector))
    display = None
    if live:  # one row per site on the terminal, redrawn while the reactor runs
        from twisted.internet import reactor

        from crawler.live import LiveDisplay

        display = LiveDisplay([(r.spider, c) for c, r, _ in runs])
        reactor.callWhenRunning(display.start)
        reactor.addSystemEventTrigger("before", "shutdown", display.stop)
    process.start()
    for crawler, result, _collector in runs:
        result.stats = dict(crawler.stats.get_stats() if crawler.stats else {})
        result.error = result.error or getattr(crawler.spider, "error", None)
    return [result for _crawler, result, _collector in runs]
