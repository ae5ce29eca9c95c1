"""Cluster crawls on Redis (``govcrawl crawl --redis URL``): workers in separate processes share
the frontier, the request dupefilter and the dedup state; the archive is S3 (moto).

Redis is a real redis-server on a free 127.0.0.1 port of each test's own (tests/redis_server.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CASSETTES, REPO, run_govcrawl
from tests.redis_server import RedisServer
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401 (fixtures)


@pytest.fixture
def redis_private(tmp_path):
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def local_documents(archive: Path) -> dict[str, tuple]:
    """meta.json key -> what identifies the stored version (url, text hash, outcome)."""
    out = {}
    for path in (archive / "docs").rglob("meta.json"):
        meta = json.loads(path.read_text(encoding="utf-8"))
        out[str(path.relative_to(archive))] = (meta["url"], meta["hashes"]["text_hash"],
                                               meta["dedup"]["outcome"])
    return out


def s3_documents(s3, bucket: str, prefix: str) -> dict[str, tuple]:
    out = {}
    client = s3.client()
    for key in s3.keys(bucket, prefix + "docs/"):
        if key.endswith("/meta.json"):
            meta = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            out[key[len(prefix):]] = (meta["url"], meta["hashes"]["text_hash"],
                                      meta["dedup"]["outcome"])
    return out


def pages_fetched(report: str) -> int:
    """Total of the ``pages`` column of the crawl report table."""
    rows = [line.split() for line in report.splitlines()[1:]]
    return sum(int(row[1]) for row in rows if len(row) > 1 and row[1].isdigit())


def worker(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=cwd,
                            env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_workers_on_the_cassettes_store_what_one_plain_crawl_stores(
        tmp_path, redis_private, s3_server, s3_bucket):  # noqa: F811
    plain = run_govcrawl("crawl", "--all", "--cassettes", str(CASSETTES), "--archive",
                         str(tmp_path / "plain"), "--state-dir", str(tmp_path / "plain-state"),
                         cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    expected = local_documents(tmp_path / "plain")
    assert len(expected) >= 15

    env = {**os.environ, **s3_server.env}
    archive = f"s3://{s3_bucket}/cluster/"
    workers = [worker(["crawl", "--all", "--cassettes", str(CASSETTES), "--redis",
                       redis_private.url, "--archive", archive, "--state-dir",
                       str(tmp_path / f"w{i}")], env, tmp_path) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    assert s3_documents(s3_server, s3_bucket, "cluster/") == expected
    # the frontier is shared, not copied: together the workers fetch about one crawl's pages
    # (each reads robots.txt of the hosts it meets itself, so a little more). Not "each did some":
    # replayed cassettes are quick, and on a loaded machine one worker may open its spiders only
    # after the other has crawled everything (seen: [0, 97])
    pages = [pages_fetched(out) for out, _ in outputs]
    assert pages_fetched(plain.stdout) <= sum(pages) < 1.5 * pages_fetched(plain.stdout), pages
    verify = run_govcrawl("archive", "verify", "--archive", archive, cwd=tmp_path, env=env)
    assert verify.returncode == 0 and "BAD" not in verify.stdout, verify.stdout[-2000:]
    # the crawl is over: its frontier, leases and dupefilter are gone, the dedup state stays
    keys = {k.decode() for k in redis_private.client().keys("*")}
    assert keys and all(k.startswith("govcrawl:dedup:") for k in keys), sorted(keys)[:10]


def test_a_local_archive_or_a_bad_redis_url_is_refused(tmp_path, redis_private):
    """(A Redis that is down at start: tests/faults/test_redis_faults.py.)"""
    proc = run_govcrawl("crawl", "liuzhi", "--cassettes", str(CASSETTES), "--redis",
                        redis_private.url, "--archive", str(tmp_path / "a"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "s3://" in proc.stderr, proc.stderr
    proc = run_govcrawl("crawl", "liuzhi", "--redis", "http://127.0.0.1/0", "--archive",
                        "s3://bucket/x/", cwd=tmp_path)
    assert proc.returncode == 2 and "not a redis URL" in proc.stderr
    assert not (tmp_path / "a").exists()


def test_each_worker_has_a_crawl_id_of_its_own():
    """Workers started in the same second had one crawl id: their WARC segments collided and
    each rewrote the others' manifest."""
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler import items
    from crawler.runner import project_settings

    class Portal(Spider):
        name = "portal"

    def crawl_id(**overrides: str) -> str:
        crawler = Crawler(Portal, project_settings(overrides))
        spiders = items.crawl_id(crawler)  # the spider takes it when it is made ...
        crawler.addons.load_settings(crawler.settings)  # ... before the add-ons run
        assert crawler.settings.get("GOVCRAWL_CRAWL_ID") == spiders  # one id for all
        return spiders

    cluster = {"GOVCRAWL_REDIS_URL": "redis://127.0.0.1:1/0"}
    ids = [crawl_id(**cluster), crawl_id(**cluster)]
    assert ids[0] != ids[1] and all(re.fullmatch(r"\d{8}T\d{6}Z-portal-w[0-9a-f]{8}", i)
                                    for i in ids), ids
    assert re.fullmatch(r"\d{8}T\d{6}Z-portal", crawl_id())  # no cluster: as before
    assert crawl_id(GOVCRAWL_CRAWL_ID="mine") == "mine"


def test_leases_do_not_age_while_redis_is_away(redis_private):
    """A Redis restart longer than the lease TTL used to expire every lease: other workers
    crawled those requests again while their holders still worked on them (two workers wrote
    one document at once: a manifest line whose meta.json bytes were the other worker's)."""
    from scrapy import Request, Spider

    from crawler.cluster import LeasedQueue

    spider, server = Spider("clock"), redis_private.client()
    holder, other = (LeasedQueue(server, spider, "govcrawl:clock:requests", ttl=2.0, worker=w)
                     for w in ("holder", "other"))
    for n in range(2):
        holder.push(Request(f"http://127.0.0.1/{n}"))
    taken = holder.pop()
    holder.renew()
    redis_private.restart(down_for=3)  # nobody reaches Redis for longer than the TTL
    assert other.pop().url != taken.url  # the other request, not the holder's lease
    assert other.pop() is None
    # a holder that is gone for good: its lease comes back once live workers' time passes
    for _ in range(40):  # bounded: 20 s
        other.renew()
        back = other.pop()
        if back is not None:
            break
        time.sleep(0.5)
    assert back is not None and back.url == taken.url
