"""Politeness across a cluster (crawler/cluster_politeness.py): three ``govcrawl crawl --redis``
workers put no more load on a host than one worker would.

The portal is generated (articles from real corpus page templates, benchmarks/crawl_throughput.py)
and served by a threaded HTTP server on 127.0.0.1 that records, for every request, which worker
sent it (``-s USER_AGENT=...``), when it arrived, and how many requests it was answering at once.
A request counts as being answered from its arrival until just before its body is written, which
lies inside the worker's lease on the host (taken before it sent, given back after the answer).

Each worker takes few requests from the shared queue at a time (``CONCURRENT_REQUESTS``), so
that all three get work while the crawl lasts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.crawl_throughput import PER_LIST, Site
from crawler.cluster_politeness import ACQUIRE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT, host_keys
from tests.conftest import REPO
from tests.redis_server import RedisServer
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401 (fixtures)


@dataclass
class Hit:
    worker: str
    path: str
    start: float
    end: float = 0.0


@dataclass
class Portal:
    """The generated portal on 127.0.0.1 and what it saw."""

    site: Site
    robots: bytes
    latency: float
    hits: list[Hit] = field(default_factory=list)
    active: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str) -> tuple[int, bytes, str]:
        html = "text/html; charset=utf-8"
        if path == "/robots.txt":
            return 200, self.robots, "text/plain"
        for n in range(self.site.n_lists):
            if path == "/xxgk/index.html" if n == 0 else path == f"/xxgk/index_{n}.html":
                return 200, self.site.list_page(n), html
        for i in range(self.site.n_pages):
            if path == self.site.article_url_path(i):
                return 200, self.site.article(i), html
        return 404, b"not found", "text/plain"

    def serve(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                hit = Hit(self.headers.get("User-Agent", ""), self.path, time.monotonic())
                with portal.lock:
                    portal.hits.append(hit)
                    portal.active += 1
                    portal.peak = max(portal.peak, portal.active)
                try:
                    time.sleep(portal.latency)
                    status, body, kind = portal.answer(self.path)
                finally:
                    with portal.lock:
                        portal.active -= 1
                        hit.end = time.monotonic()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        return httpd, thread


@pytest.fixture
def redis_private(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def crawl_with_three_workers(portal: Portal, tmp_path: Path, redis_url: str, s3, bucket: str,
                             settings: dict[str, str]) -> list[str]:
    """Serve ``portal``, crawl it with three workers at once; return their stdout."""
    httpd, thread = portal.serve()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    (tmp_path / "portal.yaml").write_text(json.dumps({
        "name": "portal", "title": "生成的测试门户", "start_urls": [f"{base}/xxgk/index.html"],
        "allowed_domains": ["127.0.0.1"], "article_patterns": [r"/t\d{8}_\d+\.html$"],
        "max_pages": 5, "max_depth": 1}, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, **s3.env, "PYTHONPATH": str(REPO),
           "GOVCRAWL_PROFILES": str(tmp_path / "portal.yaml")}
    workers = []
    try:
        for i in range(3):
            args = ["crawl", "portal", "--redis", redis_url, "--archive",
                    f"s3://{bucket}/cluster/", "--state-dir", str(tmp_path / f"w{i}"),
                    "-s", f"USER_AGENT=govcrawl-test-w{i}", "-s", "GOVCRAWL_EXTRACT_WORKERS=0"]
            for name, value in settings.items():
                args += ["-s", f"{name}={value}"]
            workers.append(subprocess.Popen([sys.executable, "-m", "crawler.cli", *args],
                                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
    for i, (w, (_out, err)) in enumerate(zip(workers, outputs, strict=True)):
        log = (tmp_path / f"w{i}" / "logs" / "portal.log").read_text(errors="replace")
        assert w.returncode == 0, err[-2000:] + log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    served = {hit.path for hit in portal.hits}
    assert {portal.site.article_url_path(i) for i in range(portal.site.n_pages)} <= served
    return [out for out, _err in outputs]


def overlapping_workers(hits: list[Hit]) -> bool:
    """Some two requests of different workers were in the air at the same time."""
    return any(a.worker != b.worker and a.start < b.end and b.start < a.end
               for a in hits for b in hits)


def test_three_workers_never_exceed_the_single_worker_host_limit(
        tmp_path, redis_private, s3_server, s3_bucket):  # noqa: F811
    portal = Portal(Site(2 * PER_LIST), robots=b"User-agent: *\nDisallow: /private/\n",
                    latency=0.2)
    crawl_with_three_workers(portal, tmp_path, redis_private.url, s3_server, s3_bucket, {
        "CONCURRENT_REQUESTS_PER_DOMAIN": "2", "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0", "CONCURRENT_REQUESTS": "2"})
    workers = {hit.worker for hit in portal.hits}
    assert len(workers) >= 2  # workers took their share of the host (a slow start: not all 3)
    assert overlapping_workers(portal.hits)  # ... at the same time as the others
    assert portal.peak <= 2, portal.peak  # and together they kept one worker's limit
    # the host's leases and state are gone when the crawl is over
    keys = {k.decode() for k in redis_private.client().keys("govcrawl:host:*")}
    assert not keys, keys


def test_robots_crawl_delay_holds_across_workers(
        tmp_path, redis_private, s3_server, s3_bucket):  # noqa: F811
    """``Crawl-delay: 1`` in robots.txt: every request to the host (robots.txt too) starts at least
    a second after the previous one, whichever worker sends it, although AutoThrottle alone would
    start one worker's requests 0.05 s apart."""
    portal = Portal(Site(8), robots=b"User-agent: *\nCrawl-delay: 1\nAllow: /\n", latency=0.0)
    outputs = crawl_with_three_workers(portal, tmp_path, redis_private.url, s3_server, s3_bucket,
                                       {"AUTOTHROTTLE_START_DELAY": "0.05",
                                        "RANDOMIZE_DOWNLOAD_DELAY": "False",
                                        "CONCURRENT_REQUESTS": "1"})
    hits = sorted(portal.hits, key=lambda h: h.start)
    assert len({hit.worker for hit in hits}) >= 2 and len(hits) >= 3 + 1 + 8, outputs
    gaps = [b.start - a.start for a, b in zip(hits, hits[1:], strict=False)]
    # a lower bound only (a loaded machine can only make the gaps longer); the margin covers
    # the rate difference of the Redis server's clock and ours over one second
    assert min(gaps) >= 0.98, [(h.worker, h.path, round(h.start - hits[0].start, 3))
                               for h in hits]
    assert portal.peak == 1


# --- the host lease scripts, on their own ---------------------------------------------------------


class Host:
    """One host's lease scripts on the session's redis-server (a key of its own)."""

    def __init__(self, server: RedisServer, name: str, ttl_ms: int = 10_000):
        client = server.client()
        self.keys = host_keys(name)
        self.ttl_ms = ttl_ms
        self._acquire, self._release, self._renew = (client.register_script(s) for s in (
            ACQUIRE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT))

    def acquire(self, lease: str, limit: int = 2, delay_ms: int = 0) -> int:
        robots = int(lease.endswith(":r"))
        return self._acquire(keys=self.keys, args=[lease, limit, delay_ms, self.ttl_ms, robots,
                                                   100])

    def release(self, lease: str, robots_delay_ms: int = -1) -> None:
        self._release(keys=self.keys, args=[lease, self.ttl_ms, robots_delay_ms])


def test_a_host_lease_caps_concurrency_and_a_dead_workers_lease_expires(redis_server):
    host = Host(redis_server, f"limit-{time.monotonic_ns()}", ttl_ms=2000)
    assert host.acquire("a:1") == 0 and host.acquire("b:1") == 0
    assert host.acquire("c:1") > 0  # the host is full: wait
    host.release("a:1")
    assert host.acquire("c:1") == 0
    # "b" dies holding its lease: nobody renews it, it expires and the slot comes back
    host._renew(keys=host.keys, args=[host.ttl_ms, "c:1"])
    assert host.acquire("d:1") > 0
    deadline = time.monotonic() + 20
    while host.acquire("d:1") != 0:
        assert time.monotonic() < deadline, "the dead worker's lease never expired"
        time.sleep(0.05)


def test_robots_crawl_delay_is_stored_for_the_cluster(redis_server):
    host = Host(redis_server, f"robots-{time.monotonic_ns()}")
    assert host.acquire("a:1:r") == 0
    assert host.acquire("b:1:r") > 0  # one robots.txt request of a host at a time
    assert host.acquire("a:2") == 0  # (other requests are not held up by it)
    host.release("a:2")
    host.release("a:1:r", robots_delay_ms=5000)  # robots.txt asks Crawl-delay: 5
    wait = host.acquire("b:1:r")
    assert 0 < wait <= 5000  # counted from the end of the robots.txt request (a:1:r asked none)
    key, _leases = host.keys
    client = redis_server.client()
    client.hset(key, "next", 0)  # (skip the wait)
    assert host.acquire("b:1:r") == 0
    client.hset(key, "next", 0)
    assert host.acquire("c:1", limit=4) > 0  # a Crawl-delay host: one request at a time
    host.release("b:1:r", robots_delay_ms=0)  # robots.txt changed: no Crawl-delay any more
    client.hset(key, "next", 0)
    assert host.acquire("c:1", limit=4) == 0 and host.acquire("c:2", limit=4) == 0
