"""The scheduler feeding the cluster (:mod:`crawler.cluster`).

``govcrawl schedule --redis URL`` does not crawl a due site itself: :func:`seed` puts the site's
start requests (its spider's own ``start()``, serialized as scrapy-redis does) into the site's
Redis frontier, marks its fingerprints in the site's dupefilter, and names the site in
``govcrawl:fed``, all in one transaction, unless a crawl of the site is still under way (requests
queued or leased: then the site is skipped, as a local crawl still running is).

``govcrawl worker --redis URL`` (:class:`Worker`), on any number of machines, watches
``govcrawl:fed`` and joins the crawl of each site named there: a ``govcrawl crawl SITE --redis
URL`` child process with ``GOVCRAWL_REDIS_JOIN`` (:class:`JoinOnly`: the spider's start requests
are not queued again, the worker takes requests from the frontier only), at most
``GOVCRAWL_REDIS_WORKER_CRAWLS`` at once. A child ends when the site's frontier is drained; the
site then leaves ``govcrawl:fed`` (checked and removed atomically, so a new feed is never lost).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.spiderloader import get_spider_loader
from scrapy_redis import picklecompat
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.cluster import KEY_PREFIX, OUTAGE_ERRORS, LeasedQueue, cluster_url

logger = logging.getLogger("govcrawl.worker")

#: Sites whose cluster crawl the scheduler started and that are not drained yet.
FED = KEY_PREFIX + "fed"

#: KEYS: queue, leases, fed set. ARGV: site. Forget a fed site whose frontier is drained.
FORGET_DRAINED = """
if redis.call('ZCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


def site_keys(site: str) -> tuple[str, str, str]:
    """The site's queue, its leases and its dupefilter (the keys crawler.cluster uses)."""
    queue = f"{KEY_PREFIX}{site}:requests"
    return queue, f"{queue}:leases", f"{KEY_PREFIX}{site}:dupefilter"


def check_url(url: str) -> None:
    """ValueError unless ``url`` reads as ``redis://HOST:PORT/DB`` (nothing is connected)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"not a redis URL (redis://HOST:PORT/DB): {url!r}")
    redis.Redis.from_url(url).close()  # a bad port or database number


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


async def _collect(start: Any) -> list[Request]:
    return [r async for r in start if isinstance(r, Request)]


def start_requests(settings: Any, site: str) -> tuple[Any, list[Request]]:
    """``site``'s spider (built as a crawl builds it, not run) and what its ``start()`` yields."""
    spidercls = get_spider_loader(settings).load(site)
    spider = spidercls.from_crawler(Crawler(spidercls, settings))
    return spider, asyncio.run(_collect(spider.start()))


def seed(settings: Any, site: str) -> int | None:
    """Queue ``site``'s start requests for the workers (see the module docstring); how many, or
    None while a crawl of the site is still under way."""
    server = connect(str(cluster_url(settings)))
    try:
        spider, requests = start_requests(settings, site)
        queue_key, leases_key, dupefilter_key = site_keys(site)
        queue = LeasedQueue(server, spider, queue_key, picklecompat)
        fingerprints = RFPDupeFilter(server, dupefilter_key)
        with server.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(queue_key, leases_key)
                if pipe.zcard(queue_key) or pipe.zcard(leases_key):
                    return None
                pipe.multi()
                pipe.delete(dupefilter_key)  # left by a crawl that ended unclean: start afresh
                for request in requests:
                    pipe.sadd(dupefilter_key, fingerprints.request_fingerprint(request))
                    pipe.zadd(queue_key, {queue._encode_request(request): -request.priority})
                pipe.sadd(FED, site)
                pipe.execute()
            except redis.WatchError:  # a worker queued or leased meanwhile: still running
                return None
        return len(requests)
    finally:
        server.close()


class JoinOnly:
    """Spider middleware: with ``GOVCRAWL_REDIS_JOIN`` (and ``GOVCRAWL_REDIS_URL``), the spider's
    start requests are dropped: the worker takes its requests from the cluster's frontier only,
    which the scheduler (or another worker) seeded. ``start()`` still runs, so the spider knows
    its start URLs (a site whose start URLs all fail is reported down)."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> JoinOnly:
        settings = crawler.settings
        if not (cluster_url(settings) and settings.getbool("GOVCRAWL_REDIS_JOIN")):
            raise NotConfigured  # (no message: Scrapy would log one for every crawl)
        return cls()

    async def process_start(self, start: Any) -> Any:
        async for _request in start:
            pass
        return
        yield  # an async generator that yields nothing


class Worker:
    """``govcrawl worker``: crawl what the scheduler fed (see the module docstring)."""

    def __init__(self, url: str, crawl_args: list[str], state_dir: Path, sites: list[str],
                 max_crawls: int = 4, poll: float = 5.0, retry_max: float = 30.0,
                 once: bool = False):
        self.url = url
        self.server = connect(url)
        self.crawl_args = crawl_args
        self.state_dir = state_dir
        self.known = set(sites)
        self.max_crawls = max(1, max_crawls)
        self.poll = poll
        self.retry_max = retry_max
        self.once = once
        self.children: dict[str, subprocess.Popen] = {}
        self.codes: dict[str, int] = {}  # site -> exit code of its last crawl here
        self._forget = self.server.register_script(FORGET_DRAINED)
        self._stop = threading.Event()
        self._unknown_logged: set[str] = set()

    def stop(self, signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        """Take no more crawls; ask the running ones to finish (Scrapy stops cleanly)."""
        logger.info("signal %s: stopping", signum)
        self._stop.set()
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def _start(self, site: str) -> None:
        command = [sys.executable, "-m", "crawler.cli", "crawl", site, "--redis", self.url,
                   *self.crawl_args, "-s", "GOVCRAWL_REDIS_JOIN=True"]
        log_path = self.state_dir / "logs" / f"{site}.worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("join the crawl of %s (log: %s)", site, log_path)
        with open(log_path, "ab") as log:
            self.children[site] = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                   stderr=subprocess.STDOUT)

    def _reap(self) -> None:
        for site, child in list(self.children.items()):
            code = child.poll()
            if code is not None:
                del self.children[site]
                self.codes[site] = code
                (logger.info if code == 0 else logger.error)("end %s: exit code %s", site, code)

    def _with_work(self) -> list[str]:
        """Fed sites whose crawl is not over (a drained one leaves the fed set)."""
        sites = []
        for raw in sorted(self.server.smembers(FED)):
            site = raw.decode()
            if site in self.children:
                sites.append(site)
                continue
            queue, leases, _ = site_keys(site)
            if not self._forget(keys=[queue, leases, FED], args=[site]):
                sites.append(site)
        return sites

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> dict[str, int]:
        """Until stopped (``once``: until no fed site has work left); the crawls' exit codes."""
        down, backoff = False, 1.0
        while not self._stop.is_set():
            self._reap()
            try:
                sites = self._with_work()
            except OUTAGE_ERRORS as exc:
                if not down:
                    logger.error("Redis unreachable (%s): pausing, retrying with backoff", exc)
                down, backoff = True, min(backoff * 2, self.retry_max) if down else 1.0
                self._stop.wait(backoff)
                continue
            if down:
                logger.warning("Redis is back: resuming")
                down, backoff = False, 1.0
            for site in sites:
                if site in self.children or len(self.children) >= self.max_crawls:
                    continue
                if self.codes.get(site) == 2:  # refused its configuration: it would again
                    continue
                if site not in self.known:
                    if site not in self._unknown_logged:
                        logger.warning("skip %s: no such site profile here", site)
                        self._unknown_logged.add(site)
                    continue
                self._start(site)
            if self.once and not self.children and not [s for s in sites if s in self.known]:
                break
            self._stop.wait(self.poll)
        for child in self.children.values():
            child.wait()
        self._reap()
        self.server.close()
        return self.codes
