"""Cluster crawls at scale (issue 12): three ``govcrawl crawl --redis`` worker processes crawl a
generated portal of 2,000 articles (tests/portal.py: real corpus templates, ``index_N.html``
paging) into S3 (moto), on a real redis-server with AOF. One worker is SIGKILLed mid-crawl, or
Redis is restarted mid-crawl; either way every article is archived exactly once: the documents
are those of a one-process crawl of the same portal, each stored once (one version, no alias),
each raw record in the archive, and ``govcrawl archive verify`` passes.

The portal also measures the peak number of requests it answered at once per host: never above
the single-worker limit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_govcrawl
from tests.portal import Portal
from tests.redis_server import RedisServer
from tests.s3server import S3Server, s3_env, s3_server  # noqa: F401 (fixtures)
from tests.test_cluster import local_documents, s3_documents, worker

ARTICLES = 2000
WORKERS = 3
#: A dead worker's leases come back after this (seconds); renewed every TTL/4 while alive.
LEASE_TTL = 8
#: The per-host limit (CONCURRENT_REQUESTS_PER_DOMAIN, crawler/settings.py): the cluster's,
#: held by host leases in Redis (crawler/cluster_politeness.py), whatever the number of workers.
PER_HOST = 4
SITE = "portal"
WORKER_SETTINGS = ["-s", f"GOVCRAWL_REDIS_LEASE_TTL={LEASE_TTL}",
                   "-s", "GOVCRAWL_REDIS_RETRY_MAX=2"]


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    with Portal(ARTICLES) as server:
        yield server


@pytest.fixture(scope="module")
def profile_env(portal: Portal, tmp_path_factory) -> dict[str, str]:
    path = portal.profile(tmp_path_factory.mktemp("profiles") / f"{SITE}.yaml", SITE)
    return {"GOVCRAWL_PROFILES": str(path)}


@pytest.fixture(scope="module")
def one_process(portal: Portal, profile_env: dict[str, str], tmp_path_factory) -> dict:
    """The documents a plain one-process crawl of the portal stores (local archive)."""
    tmp = tmp_path_factory.mktemp("one-process")
    proc = run_govcrawl("crawl", SITE, "--archive", str(tmp / "archive"), "--state-dir",
                        str(tmp / "state"), cwd=tmp, env=profile_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    documents = local_documents(tmp / "archive")
    assert len(documents) == ARTICLES
    return documents


class Cluster:
    """WORKERS crawl processes of the portal, each with a state dir of its own."""

    def __init__(self, tmp: Path, redis: RedisServer, s3: S3Server, env: dict[str, str]):
        self.tmp, self.redis, self.s3 = tmp, redis, s3
        self.bucket = s3.create_bucket()
        self.archive = f"s3://{self.bucket}/cluster/"
        self.env = {**os.environ, **s3.env, **env}
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        self.procs = [worker(["crawl", SITE, "--redis", self.redis.url, "--archive",
                              self.archive, "--state-dir", str(self.tmp / f"w{i}"),
                              *WORKER_SETTINGS], self.env, self.tmp) for i in range(WORKERS)]

    def wait(self) -> list[tuple[int, str, str]]:
        out = []
        for proc in self.procs:
            stdout, stderr = proc.communicate(timeout=600)
            out.append((proc.returncode, stdout, stderr))
        return out

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)

    def log(self, i: int) -> str:
        return (self.tmp / f"w{i}" / "logs" / f"{SITE}.log").read_text(errors="replace")

    def leases_of(self, proc: subprocess.Popen) -> list[str]:
        leases = self.redis.client().zrange(f"govcrawl:{SITE}:requests:leases", 0, -1)
        return [x.decode() for x in leases if f"-{proc.pid}-" in x.decode()]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def raw_records_missing(s3: S3Server, bucket: str) -> list[str]:
    """meta.json ``pages[].warc`` keys (the page's raw record) that are not in the archive."""
    client = s3.client()
    keys = set(s3.keys(bucket, "cluster/"))
    missing = []
    for key in sorted(keys):
        if key.endswith("/meta.json") and key.startswith("cluster/docs/"):
            meta = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            for page in meta["pages"]:
                if "cluster/" + page["warc"]["key"] not in keys:
                    missing.append(f"{key}: {page['warc']['key']}")
    return missing


def assert_archived_exactly_once(cluster: Cluster, expected: dict, portal: Portal,
                                 runs: int = WORKERS, killed: bool = False) -> None:
    documents = s3_documents(cluster.s3, cluster.bucket, "cluster/")
    assert len(documents) == len(expected) == ARTICLES
    assert documents == expected  # same keys (one v1 per article), URLs, texts, outcomes
    assert not cluster.s3.keys(cluster.bucket, "cluster/aliases/")  # nothing stored as a copy
    assert portal.articles_served == ARTICLES
    assert not raw_records_missing(cluster.s3, cluster.bucket)
    crawl_keys = cluster.s3.keys(cluster.bucket, "cluster/crawls/")
    manifests = {k.split("/")[2] for k in crawl_keys if k.endswith("/manifest.jsonl")}
    # every worker run that stored anything (a WARC segment, a report) has its manifest; a
    # worker killed before it fetched a page (it may still be waiting for a host lease) has none
    assert {k.split("/")[2] for k in crawl_keys} == manifests
    assert runs - 1 <= len(manifests) <= runs if killed else len(manifests) == runs, manifests
    verify = run_govcrawl("archive", "verify", "--archive", cluster.archive, env=cluster.env,
                          cwd=cluster.tmp)
    assert verify.returncode == 0 and "BAD" not in verify.stdout, verify.stdout[-2000:]
    # the crawl is over: frontier, leases and dupefilter are gone, the dedup state stays
    keys = {k.decode() for k in cluster.redis.client().keys("*")}
    assert keys and all(k.startswith("govcrawl:dedup:") for k in keys), sorted(keys)[:10]
    # politeness holds for the cluster: never more at once on the host than one worker may send
    [(host, peak)] = portal.peak.items()
    assert host == cluster_host(portal) and 1 <= peak <= PER_HOST, portal.peak
    print(f"peak concurrent requests on {host}: {peak}")


def cluster_host(portal: Portal) -> str:
    return portal.base.split("//", 1)[1]


def fresh(portal: Portal) -> None:
    portal.served.clear()
    portal.peak.clear()


def test_a_worker_sigkilled_mid_crawl_loses_nothing_and_doubles_nothing(
        tmp_path, portal, profile_env, one_process, redis_aof, s3_server):  # noqa: F811
    fresh(portal)
    cluster = Cluster(tmp_path, redis_aof, s3_server, profile_env)
    cluster.start()
    try:
        wait_until(lambda: portal.articles_served >= ARTICLES // 4, "a quarter of the articles")
        victim = cluster.procs[0]
        wait_until(lambda: bool(cluster.leases_of(victim)), "the victim to hold leases", 60)
        held = cluster.leases_of(victim)
        victim.send_signal(signal.SIGKILL)
        results = cluster.wait()
    finally:
        cluster.kill_all()
    assert results[0][0] == -signal.SIGKILL
    for code, _out, err in results[1:]:
        assert code == 0, err[-3000:]
    # what the victim had leased came back and was crawled by the others
    assert held and not cluster.leases_of(victim)
    assert s3_documents(cluster.s3, cluster.bucket, "cluster/") == one_process
    # the raw records (WARC) of what the victim archived are still in its --state-dir: its
    # machine restarts it, it uploads them (and its manifest), finds the crawl done and leaves
    again = run_govcrawl("crawl", SITE, "--redis", cluster.redis.url, "--archive",
                         cluster.archive, "--state-dir", str(tmp_path / "w0"),
                         *WORKER_SETTINGS, env=cluster.env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_archived_exactly_once(cluster, one_process, portal, runs=WORKERS + 1, killed=True)


def test_redis_restarted_mid_crawl_loses_nothing_and_doubles_nothing(
        tmp_path, portal, profile_env, one_process, redis_aof, s3_server):  # noqa: F811
    fresh(portal)
    cluster = Cluster(tmp_path, redis_aof, s3_server, profile_env)
    cluster.start()
    try:
        wait_until(lambda: portal.articles_served >= ARTICLES // 4, "a quarter of the articles")
        redis_aof.restart(down_for=3)  # same port, same data dir (AOF)
        results = cluster.wait()
    finally:
        cluster.kill_all()
    for i, (code, _out, err) in enumerate(results):
        assert code == 0, err[-3000:]
        log = cluster.log(i)
        assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:5000]
    assert_archived_exactly_once(cluster, one_process, portal)
