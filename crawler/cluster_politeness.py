"""Politeness for the cluster: per-host concurrency and delay held by Redis, so a host gets the
same load from N workers as from one (``GOVCRAWL_REDIS_URL``, :mod:`crawler.cluster`).

Each worker's Scrapy keeps its own download slots (``CONCURRENT_REQUESTS_PER_DOMAIN``,
AutoThrottle's delay, the robots.txt ``Crawl-delay`` floor of :mod:`crawler.politeness`). When a
slot hands a request to the network, :class:`ClusterDownloader` first takes a *host lease* in
Redis (one Lua script, the Redis server's clock), for the slot's key (the host):

* at most the slot's concurrency leases of a host are held at once, by all workers together;
* a lease is granted no sooner than the slot's delay after the previous grant for the host
  (``next``), whoever got it;
* a host whose robots.txt asks for a ``Crawl-delay`` gets one request at a time, each starting at
  least that long after the previous one *ended*. The worker that reads robots.txt stores the
  delay beside the host's state before it releases the lease, so the others keep to it before
  they have read robots.txt themselves; two robots.txt requests of a host never run at once;
* the lease is released when the response (or the failure) is back. While it is held the worker
  renews it; a dead worker's leases expire after ``GOVCRAWL_REDIS_HOST_LEASE_TTL`` seconds, so
  its slots come back (no deadlock after a SIGKILL).

A request that finds its host full or too early waits (a timer, the reactor runs on) and asks
again; when the crawl is told to stop, a waiting request is not sent (as those still queued in the
download slots are, :class:`crawler.runner.GovcrawlProcess`).

Keys: ``govcrawl:host:<slot key>`` (hash: ``next``, ``crawl_delay``, in ms) and ``...:leases``
(lease id -> expiry); both expire on their own once the host is left alone (a lease TTL after the
host's last delay), and when a site's crawl is over (nothing queued or leased), each worker out
removes the state of the hosts it crawled, as the dupefilter is cleared (a crawl of another site
on the same host, rare, then starts that host afresh).

A Redis outage goes through the cluster scheduler's handling (one log line, backoff; see
:mod:`crawler.cluster`): requests wait for Redis instead of going out unchecked. A release that
cannot be sent is dropped: that lease expires on its own.

A crawl that only replays cassettes touches no host: it has no host leases. Without
``GOVCRAWL_REDIS_URL`` this module is not used (``DOWNLOADER`` is Scrapy's own).
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from scrapy import Request, signals
from scrapy.core.downloader import Downloader
from scrapy.http import Response
from scrapy.utils.asyncio import sleep
from twisted.internet import task

from crawler.cassette import CassetteLibrary
from crawler.cluster import KEY_PREFIX, ClusterScheduler
from crawler.politeness import is_robots_txt, robots_crawl_delay
from crawler.runner import STOPPED, CrawlStopped

logger = logging.getLogger(__name__)

#: A lease id of a robots.txt request ends with this.
ROBOTS_SUFFIX = ":r"
#: How long (seconds) a request waits before asking again for a full host.
POLL = 0.1
#: While Redis is unreachable, how long (seconds) a waiting request sleeps between tries.
DOWN_POLL = 1.0

_LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function expire_after(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

#: KEYS: host hash, host leases. ARGV: lease id, concurrency, delay ms, ttl ms, robots (0/1),
#: poll ms. Returns 0 when the lease is granted, else how many ms to wait before asking again.
ACQUIRE_SCRIPT = _LUA_NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local limit, delay, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local poll = tonumber(ARGV[6])
local crawl_delay = tonumber(redis.call('HGET', KEYS[1], 'crawl_delay') or '0')
if crawl_delay > 0 then
  limit = 1
  if crawl_delay > delay then delay = crawl_delay end
end
local holders = redis.call('ZRANGE', KEYS[2], 0, -1)
if #holders >= limit then return poll end
if ARGV[5] == '1' then
  for _, id in ipairs(holders) do
    if string.sub(id, -2) == ':r' then return poll end
  end
end
local wait = tonumber(redis.call('HGET', KEYS[1], 'next') or '0') - now
if wait > 0 then return wait end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
expire_after(KEYS[2], ttl)
redis.call('HSET', KEYS[1], 'next', now + delay)
expire_after(KEYS[1], ttl + delay)
return 0
"""

#: KEYS: host hash, host leases. ARGV: lease id, ttl ms, robots Crawl-delay ms (-1: not a
#: robots.txt answer, 0: it asks none). The next request waits the host's Crawl-delay from now.
RELEASE_SCRIPT = _LUA_NOW + """
redis.call('ZREM', KEYS[2], ARGV[1])
local robots_delay = tonumber(ARGV[3])
if robots_delay > 0 then
  redis.call('HSET', KEYS[1], 'crawl_delay', robots_delay)
elseif robots_delay == 0 then
  redis.call('HDEL', KEYS[1], 'crawl_delay')
end
local crawl_delay = tonumber(redis.call('HGET', KEYS[1], 'crawl_delay') or '0')
if crawl_delay > 0 then
  local next = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
  if next < now + crawl_delay then redis.call('HSET', KEYS[1], 'next', now + crawl_delay) end
  expire_after(KEYS[1], tonumber(ARGV[2]) + crawl_delay)
end
return 1
"""

#: KEYS: host hash, host leases. ARGV: ttl ms, lease ids... Extends the leases still held.
RENEW_SCRIPT = _LUA_NOW + """
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[i]) end
expire_after(KEYS[2], ttl)
expire_after(KEYS[1], ttl)
return 1
"""

def host_keys(slot_key: str) -> list[str]:
    base = f"{KEY_PREFIX}host:{slot_key}"
    return [base, f"{base}:leases"]


def network_reachable(settings: Any) -> bool:
    """False for a crawl that only replays cassettes (it never reaches a host)."""
    return not (CassetteLibrary.configured(settings)
                and (settings.get("GOVCRAWL_RECORD_MODE") or "none") == "none")


class HostGate:
    """Host leases of one worker (see the module docstring)."""

    def __init__(self, crawler: Any, downloader: Downloader):
        self.crawler = crawler
        self.downloader = downloader
        self.ttl_ms = int(crawler.settings.getfloat("GOVCRAWL_REDIS_HOST_LEASE_TTL", 10.0) * 1000)
        self.robots_first = crawler.settings.getbool("ROBOTSTXT_OBEY")
        self._ids = itertools.count(1)
        self._scheduler: ClusterScheduler | None = None
        self._scripts: dict[str, Any] = {}
        self.held: dict[str, set[str]] = {}  # slot key -> lease ids held by this worker
        self.hosts: set[str] = set()  # slot keys this worker asked for
        self._loop: task.LoopingCall | None = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    # Redis, through the cluster scheduler's connection and outage handling -------------------
    @property
    def scheduler(self) -> ClusterScheduler:
        if self._scheduler is None:
            scheduler = self.crawler.engine._slot.scheduler
            if not isinstance(scheduler, ClusterScheduler):
                raise TypeError("cluster politeness needs crawler.cluster.ClusterScheduler")
            self._scheduler = scheduler
            server = scheduler.server
            self._scripts = {name: server.register_script(body) for name, body in (
                ("acquire", ACQUIRE_SCRIPT), ("release", RELEASE_SCRIPT),
                ("renew", RENEW_SCRIPT))}
            self._loop = task.LoopingCall(self.renew)
            self._loop.start(max(0.5, self.ttl_ms / 4000), now=False)
        return self._scheduler

    def _run(self, script: str, key: str, args: list[Any]) -> Any:
        """The script's answer, or None while Redis is unreachable."""
        scheduler = self.scheduler
        return scheduler._guard(lambda: self._scripts[script](keys=host_keys(key), args=args))

    # leases -----------------------------------------------------------------------------------
    async def acquire(self, request: Request) -> tuple[str, str] | None:
        """Wait for a lease on the request's host; None for a request without a host."""
        key = self.downloader.get_slot_key(request)
        slot = self.downloader.slots.get(key)
        if not key or slot is None:
            return None
        robots = self.robots_first and is_robots_txt(request.url)
        lease = f"{self.scheduler.queue.worker}:{next(self._ids)}" + (ROBOTS_SUFFIX if robots
                                                                       else "")
        self.hosts.add(key)
        started, waited = time.monotonic(), False
        while True:
            # the slot's values now: AutoThrottle and the Crawl-delay floor adjust them
            delay_ms = int(slot.delay * 1000)
            wait = self._run("acquire", key, [lease, max(1, slot.concurrency), delay_ms,
                                              self.ttl_ms, int(robots), int(POLL * 1000)])
            if wait == 0:
                break
            if not self.crawler.crawling:  # told to stop: not sent, like those in the slots
                request.meta[STOPPED] = True
                raise CrawlStopped("crawl stopped before this request was sent")
            waited = True
            await sleep(DOWN_POLL if wait is None else wait / 1000)
        self.held.setdefault(key, set()).add(lease)
        if waited:
            stats = self.crawler.stats
            stats.inc_value("govcrawl/politeness/cluster_waits")
            stats.inc_value("govcrawl/politeness/cluster_wait_seconds",
                            round(time.monotonic() - started, 3))
        return key, lease

    def release(self, held: tuple[str, str] | None, request: Request,
                response: Response | None) -> None:
        """Give the lease back; a robots.txt answer tells the host's Crawl-delay first."""
        if held is None:
            return
        key, lease = held
        self.held.get(key, set()).discard(lease)
        robots_delay = -1
        if lease.endswith(ROBOTS_SUFFIX) and response is not None:
            if response.status == 200:
                robots_delay = int((robots_crawl_delay(self.crawler, response.body) or 0) * 1000)
            elif 400 <= response.status < 500:  # no robots.txt: no delay asked
                robots_delay = 0
        self._run("release", key, [lease, self.ttl_ms, robots_delay])

    def renew(self) -> None:
        for key, leases in list(self.held.items()):
            if leases:
                self._run("renew", key, [self.ttl_ms, *leases])

    def spider_closed(self, spider: Any = None) -> None:
        """Stop renewing; when the site's crawl is over, remove its hosts' state (see above)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        scheduler = self._scheduler
        if scheduler is not None and self.hosts and scheduler._guard(scheduler._drained, False):
            keys = [k for host in self.hosts for k in host_keys(host)]
            scheduler._guard(lambda: scheduler.server.delete(*keys))


class GatedHandlers:
    """Scrapy's download handlers behind the worker's :class:`HostGate`."""

    def __init__(self, handlers: Any, gate: HostGate):
        self._handlers = handlers
        self.gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handlers, name)

    async def download_request_async(self, request: Request) -> Response:
        held = await self.gate.acquire(request)
        try:
            response = await self._handlers.download_request_async(request)
        except BaseException:
            self.gate.release(held, request, None)
            raise
        self.gate.release(held, request, response)
        return response


class ClusterDownloader(Downloader):
    """Scrapy's downloader whose requests take a host lease before they go out
    (``DOWNLOADER`` when ``GOVCRAWL_REDIS_URL`` is set, :class:`crawler.addons.Cluster`)."""

    def __init__(self, crawler: Any):
        super().__init__(crawler)
        self.gate: HostGate | None = None
        if network_reachable(crawler.settings):
            self.gate = HostGate(crawler, self)
            self.handlers = GatedHandlers(self.handlers, self.gate)  # type: ignore[assignment]
