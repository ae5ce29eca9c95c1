"""Distributed crawling on Redis: every worker started with the same ``GOVCRAWL_REDIS_URL``
(``govcrawl crawl ... --redis URL``) joins one crawl per site.

What the workers share, in the Redis database of the URL:

* the frontier: scrapy-redis's priority queue ``govcrawl:<site>:requests`` and its request
  dupefilter ``govcrawl:<site>:dupefilter``, fed by our spiders' own ``start()`` (scrapy-redis'
  spiders are not used: its 0.9.1 has no async ``start()``);
* leases: a request a worker pops is *leased*, not deleted (``:leases`` holds its expiry,
  ``:leased`` the request). The worker renews its leases while it works on them and
  acknowledges one only when Scrapy is done with it: its callback ran, the requests it yielded
  are in the queue and the items it yielded left the pipelines (archived). A worker that dies
  (SIGKILL, lost machine) stops renewing; its leases expire after ``GOVCRAWL_REDIS_LEASE_TTL``
  seconds and go back to the queue for another worker (the duplicates this can cause are
  absorbed by the dedup state);
* the dedup state (:mod:`crawler.dedup.redis_state`), unless ``GOVCRAWL_DEDUP_STATE`` names
  another one.

A worker closes its crawl when the queue is empty and no request is leased by anyone; the last
one out clears the dupefilter, so the next crawl of the site starts afresh.

Redis outage: a worker that cannot reach Redis logs one line, keeps the requests it could not
push and the acknowledgements it could not send, polls again with backoff (up to
``GOVCRAWL_REDIS_RETRY_MAX`` seconds between tries) and resumes when Redis answers; it does not
close its crawl while Redis is away.

Requests are stored pickled (scrapy-redis' serializer): the Redis server must be trusted as much
as the workers.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import deque
from typing import Any

import redis
from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.misc import load_object
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from crawler.runner import stopped_unsent

logger = logging.getLogger(__name__)

#: Request meta key holding the id of the lease a request was popped under.
LEASE = "govcrawl_lease"
KEY_PREFIX = "govcrawl:"

#: Time no worker could reach Redis (an outage, a restart) does not count against leases: the
#: clock key holds the last time a worker called; a gap of more than ARGV[gap] ms (half the
#: lease TTL: live workers call at least every quarter TTL) moves every lease's expiry on by
#: the gap. Without it, leases expired while Redis was away and were crawled a second time by
#: another worker while their holder still worked on them. The clock is kept while the site has
#: requests queued or leased, and dropped with them.
CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[5]) or now)
if now - last > tonumber(ARGV[3]) then
  local all = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do redis.call('ZADD', KEYS[2], tonumber(all[i + 1]) + now - last, all[i]) end
end
local function tick()
  if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) > 0 then
    redis.call('SET', KEYS[5], now)
  else
    redis.call('DEL', KEYS[5])
  end
end
"""
#: Requeue expired leases (at most 100 per call), then lease the best request.
#: KEYS: queue, leases (id -> expiry ms), leased (id -> request), scores (id -> queue score),
#: clock. ARGV: lease ttl ms, lease id, gap ms. Returns the request (or nil). Time is the Redis
#: server's.
POP_SCRIPT = CLOCK + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  local data = redis.call('HGET', KEYS[3], id)
  if data then redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[4], id) or 0, data) end
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then tick() return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], top[1])
redis.call('HSET', KEYS[4], ARGV[2], top[2])
tick()
return top[1]
"""
#: Extend the leases still held (``ZADD XX``), keep the clock. KEYS: as POP_SCRIPT. ARGV: ttl
#: ms, unused, gap ms, ids...
RENEW_SCRIPT = CLOCK + """
for i = 4, #ARGV do redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
tick()
return 1
"""

OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def cluster_url(settings: Any) -> str | None:
    """``GOVCRAWL_REDIS_URL``, or None when the crawl is not distributed."""
    url = settings.get("GOVCRAWL_REDIS_URL")
    return str(url) if url else None


class LeasedQueue(PriorityQueue):
    """scrapy-redis' priority queue whose pops are leases (see the module docstring)."""

    def __init__(self, server: redis.Redis, spider: Any, key: str, serializer: Any = None,
                 ttl: float = 60.0, worker: str = ""):
        super().__init__(server, spider, key, serializer)
        self.leases, self.leased, self.scores = (f"{self.key}:leases", f"{self.key}:leased",
                                                 f"{self.key}:scores")
        self.ttl_ms = int(ttl * 1000)
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.clock = f"{self.key}:clock"
        self.gap_ms = max(self.ttl_ms // 2, 2000)  # renewals come every max(1 s, TTL/4)
        self._pop = server.register_script(POP_SCRIPT)
        self._renew = server.register_script(RENEW_SCRIPT)
        self._count = 0
        self.held: set[str] = set()  # lease ids this worker holds

    def pop(self, timeout: int = 0) -> Request | None:
        self._count += 1
        lease = f"{self.worker}:{self._count}"
        data = self._pop(keys=self._keys(), args=[self.ttl_ms, lease, self.gap_ms])
        if not data:
            return None
        self.held.add(lease)
        request = self._decode_request(data)
        request.meta[LEASE] = lease
        return request

    def push(self, request: Request) -> None:
        request.meta.pop(LEASE, None)  # a copy of a leased request (redirect, retry)
        super().push(request)

    def ack(self, lease: str) -> None:
        """Done with the leased request: it leaves Redis."""
        with self.server.pipeline(transaction=True) as pipe:
            pipe.zrem(self.leases, lease).hdel(self.leased, lease).hdel(self.scores, lease)
            pipe.execute()
        self.held.discard(lease)

    def _keys(self) -> list[str]:
        return [self.key, self.leases, self.leased, self.scores, self.clock]

    def renew(self) -> None:
        """Extend this worker's leases; called every quarter TTL even with none, which keeps the
        cluster's clock going (see :data:`CLOCK`)."""
        self._renew(keys=self._keys(), args=[self.ttl_ms, "", self.gap_ms, *self.held])

    def leased_count(self) -> int:
        return int(self.server.zcard(self.leases))

    def clear(self) -> None:
        self.server.delete(*self._keys())


class ClusterScheduler(Scheduler):
    """scrapy-redis' scheduler over :class:`LeasedQueue`, with lease acknowledgement, idle
    handling and Redis outages (see the module docstring). ``SCHEDULER`` when
    ``GOVCRAWL_REDIS_URL`` is set (:class:`crawler.addons.Cluster`)."""

    def __init__(self, server: redis.Redis, crawler: Any = None, ttl: float = 60.0,
                 retry_max: float = 30.0, **kwargs: Any):
        super().__init__(server, **kwargs)
        self.crawler = crawler
        self.ttl = ttl
        self.retry_max = retry_max
        self._unpushed: deque[Request] = deque()
        self._unacked: deque[str] = deque()
        self._down_since: float | None = None
        self._next_try = 0.0
        self._backoff = 1.0
        self._loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ClusterScheduler:
        settings = crawler.settings
        url = cluster_url(settings)
        if not url:
            raise NotConfigured("GOVCRAWL_REDIS_URL is not set")
        server = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                      health_check_interval=15)
        dupefilter_cls = load_object(settings.get("DUPEFILTER_CLASS"))
        instance = cls(
            server, crawler, ttl=settings.getfloat("GOVCRAWL_REDIS_LEASE_TTL", 60.0),
            retry_max=settings.getfloat("GOVCRAWL_REDIS_RETRY_MAX", 30.0),
            persist=True, queue_key=KEY_PREFIX + "%(spider)s:requests",
            queue_cls="crawler.cluster.LeasedQueue",
            dupefilter_key=KEY_PREFIX + "%(spider)s:dupefilter",
            dupefilter_cls=settings.get("DUPEFILTER_CLASS"),
            dupefilter=None if hasattr(dupefilter_cls, "from_spider") else
            dupefilter_cls.from_settings(settings))
        instance.stats = crawler.stats
        crawler.signals.connect(instance.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(instance.spider_opened, signal=signals.spider_opened)
        return instance

    # scrapy-redis' Scheduler builds the queue with (server, spider, key, serializer)
    def open(self, spider: Any) -> None:
        self.spider = spider
        self.queue = LeasedQueue(self.server, spider, self.queue_key % {"spider": spider.name},
                                 self.serializer, ttl=self.ttl)
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        self._guard(lambda: self.server.ping())
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(max(1.0, self.ttl / 4), now=False)
        waiting = self._guard(lambda: len(self.queue), 0)
        if waiting:
            logger.info("Joining the cluster crawl of %s: %d requests queued", spider.name,
                        waiting)

    def spider_opened(self, spider: Any) -> None:
        self._hook_acknowledgements()

    def _hook_acknowledgements(self) -> None:
        """Acknowledge a lease when Scrapy's scraper is done with its request: callback or
        errback run, its requests scheduled, its items through the pipelines."""
        slot = self.crawler.engine.scraper.slot
        finish = slot.finish_response

        def finish_response(result: Any, request: Request) -> None:
            finish(result, request)
            self.done(request)

        slot.finish_response = finish_response

    def done(self, request: Request) -> None:
        lease = request.meta.get(LEASE)
        if lease and not stopped_unsent(request):  # unsent: its lease expires, another takes it
            self._unacked.append(lease)
            self._flush()

    def close(self, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._flush()
        if self._unpushed or self._unacked:
            logger.warning("Redis unreachable at close: %d requests not pushed, %d leases not "
                           "acknowledged (they return to the queue when their lease expires)",
                           len(self._unpushed), len(self._unacked))
            return
        if self._guard(self._drained, False):  # the crawl is over: the next one starts afresh
            self._guard(self.df.clear)
            self._guard(lambda: self.server.delete(self.queue.clock))

    # Redis outages ----------------------------------------------------------------------------
    def _guard(self, call: Any, default: Any = None) -> Any:
        """Run ``call``; on a Redis outage note it (one log line) and return ``default``."""
        if self._down_since is not None and time.monotonic() < self._next_try:
            return default
        try:
            result = call()
        except OUTAGE_ERRORS as exc:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                logger.error("Redis unreachable (%s): pausing, retrying with backoff", exc)
                if self.stats:
                    self.stats.inc_value("govcrawl/cluster/outages")
            else:
                self._backoff = min(self._backoff * 2, self.retry_max)
            self._next_try = now + self._backoff
            return default
        if self._down_since is not None:
            logger.warning("Redis is back after %.0f s: resuming",
                           time.monotonic() - self._down_since)
            self._down_since, self._backoff = None, 1.0
        return result

    @property
    def redis_down(self) -> bool:
        return self._down_since is not None

    def _flush(self) -> None:
        """Push the requests and send the acknowledgements an outage held back (in order)."""
        while self._unpushed:
            request = self._unpushed[0]
            if self._guard(lambda r=request: self.queue.push(r) or True) is None:
                return
            self._unpushed.popleft()
        while self._unacked:
            lease = self._unacked[0]
            if self._guard(lambda x=lease: self.queue.ack(x) or True) is None:
                return
            self._unacked.popleft()

    def _tick(self) -> None:
        self._flush()
        self._guard(self.queue.renew)

    # the scheduler interface ----------------------------------------------------------------------
    def enqueue_request(self, request: Request) -> bool:
        old_lease = request.meta.get(LEASE)  # a redirect/retry of a leased request
        if self._unpushed or self.redis_down:
            queued = self._hold(request)
        else:
            seen = False if request.dont_filter else self._guard(
                lambda: self.df.request_seen(request))
            if seen is None:
                queued = self._hold(request)
            elif seen:
                self.df.log(request, self.spider)
                queued = False
            else:
                queued = self._guard(lambda: self.queue.push(request) or True) is not None
                if not queued:
                    queued = self._hold(request)
                elif self.stats:
                    self.stats.inc_value("scheduler/enqueued/redis")
        if old_lease:
            self._unacked.append(old_lease)
            self._flush()
        return queued

    def _hold(self, request: Request) -> bool:
        """Keep a request Redis could not take; pushed when it answers (its dupefilter check
        is then skipped: a rare duplicate is absorbed by the dedup state)."""
        request.meta.pop(LEASE, None)
        self._unpushed.append(request)
        return True

    def next_request(self) -> Request | None:
        self._flush()
        if self.redis_down:
            return None
        request = self._guard(lambda: self.queue.pop(0))
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self._unpushed or self.redis_down:
            return True
        return bool(self._guard(lambda: len(self.queue), 0))

    def _drained(self) -> bool:
        return len(self.queue) == 0 and self.queue.leased_count() == 0

    def spider_idle(self, spider: Any) -> None:
        """Stay while the cluster has work: requests queued, or leased by any worker (a dead
        worker's come back when they expire), or Redis is away."""
        self._flush()
        if self._unpushed or self._unacked or self.redis_down:
            raise DontCloseSpider
        if not self._guard(self._drained, False):
            raise DontCloseSpider
