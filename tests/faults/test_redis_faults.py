"""Fault suite (issue 15): Redis down under a cluster crawl (``govcrawl crawl --redis``).

Two workers crawl a generated portal (tests/portal.py, 300 articles) into S3 (moto) on a real
redis-server with AOF; Redis is stopped mid-crawl and started again on the same data.

| fault | user sees | lost / doubled |
|---|---|---|
| Redis down mid-crawl, back later | exit 0; per worker log: one line paused, one resumed | 0 / 0 |
| Redis down when a worker starts | exit 1, one line: cannot reach Redis, start it again | - |
| dedup state's Redis away, no cluster | one log line; the item waits for its verdict | 0 / 0 |
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator

import pytest

from tests.conftest import run_govcrawl
from tests.dedup_fixtures import corpus_articles, decide, make_item, make_pipeline
from tests.portal import Portal
from tests.redis_server import RedisServer
from tests.s3server import s3_env, s3_server  # noqa: F401 (fixtures)
from tests.test_cluster import s3_documents, worker

ARTICLES = 300
SITE = "portal"
DOWN_FOR = 6.0  # seconds: several of the workers' retries (GOVCRAWL_REDIS_RETRY_MAX=2)
PAUSED = "Redis unreachable"
RESUMED = "Redis is back"


@pytest.fixture
def portal(tmp_path) -> Iterator[Portal]:
    with Portal(ARTICLES) as server:
        yield server


def crawl_args(redis: RedisServer, archive: str, state: str) -> list[str]:
    return ["crawl", SITE, "--redis", redis.url, "--archive", archive, "--state-dir", state,
            "-s", "GOVCRAWL_REDIS_LEASE_TTL=8", "-s", "GOVCRAWL_REDIS_RETRY_MAX=2"]


def test_redis_down_mid_crawl_workers_pause_and_resume(tmp_path, portal, redis_aof,
                                                       s3_server):  # noqa: F811
    env = {**os.environ, **s3_server.env,
           "GOVCRAWL_PROFILES": str(portal.profile(tmp_path / f"{SITE}.yaml", SITE))}
    bucket = s3_server.create_bucket()
    archive = f"s3://{bucket}/cluster/"
    procs = [worker(crawl_args(redis_aof, archive, str(tmp_path / f"w{i}")), env, tmp_path)
             for i in range(2)]
    try:
        deadline = time.monotonic() + 300
        while portal.articles_served < ARTICLES // 4:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.05)
        redis_aof.stop()
        time.sleep(DOWN_FOR)
        assert all(p.poll() is None for p in procs), "a worker gave up while Redis was down"
        redis_aof.start()
        results = [p.communicate(timeout=600) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    for i, (proc, (_out, err)) in enumerate(zip(procs, results, strict=True)):
        assert proc.returncode == 0, err[-3000:]
        assert not err.strip(), err[-3000:]
        log = (tmp_path / f"w{i}" / "logs" / f"{SITE}.log").read_text(errors="replace")
        assert "Traceback" not in log, log[log.index("Traceback") - 3000:][:6000]
        lines = [line for line in log.splitlines() if PAUSED in line or RESUMED in line]
        assert [PAUSED in lines[0], RESUMED in lines[-1], len(lines)] == [True, True, 2], lines
    # 0 lost, 0 doubled: every article stored once, as a new document (one version, no alias)
    documents = s3_documents(s3_server, bucket, "cluster/")
    wanted = {portal.article_url(i) for i in range(ARTICLES)}
    assert sorted(url for url, _hash, _outcome in documents.values()) == sorted(wanted)
    assert {outcome for _url, _hash, outcome in documents.values()} == {"new"}
    assert all(key.endswith("/v1/meta.json") for key in documents)
    assert not s3_server.keys(bucket, "cluster/aliases/")
    verify = run_govcrawl("archive", "verify", "--archive", archive, env=env, cwd=tmp_path)
    assert verify.returncode == 0 and "BAD" not in verify.stdout, verify.stdout[-2000:]


def test_a_worker_started_while_redis_is_down_says_so_in_one_line(tmp_path, portal,
                                                                   redis_aof):
    env = {"GOVCRAWL_PROFILES": str(portal.profile(tmp_path / f"{SITE}.yaml", SITE))}
    redis_aof.stop()
    proc = run_govcrawl(*crawl_args(redis_aof, "s3://bucket/x/", str(tmp_path / "w")),
                        env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "cannot reach Redis" in line and redis_aof.url in line and "again" in line, line
    assert portal.articles_served == 0 and not (tmp_path / "w" / "logs").exists()



def test_the_dedup_stage_holds_an_item_back_while_its_redis_is_away(tmp_path, redis_aof,
                                                                     caplog):
    # no commit falls due meanwhile (a slow machine can take the 5 s default between the two
    # items): the second item would then wait for the first to settle, which is not this test
    pipeline = make_pipeline(tmp_path / "state", GOVCRAWL_DEDUP_STATE=redis_aof.url,
                             GOVCRAWL_REDIS_RETRY_MAX=1, GOVCRAWL_STATE_COMMIT_INTERVAL=3600)
    first, second = corpus_articles()[:2]
    assert decide(pipeline, make_item(first["url"], first["text"])).dedup.outcome == "new"
    redis_aof.stop()
    with caplog.at_level(logging.WARNING, logger="crawler.dedup.service"):
        async def restart_then_wait():
            waiting = asyncio.ensure_future(
                pipeline.process_item(make_item(second["url"], second["text"])))
            await asyncio.sleep(2)
            assert not waiting.done()  # held back, not failed
            await asyncio.get_running_loop().run_in_executor(None, redis_aof.start)
            return await waiting

        item = asyncio.run(restart_then_wait())
    assert item.dedup.outcome == "new"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "unreachable" in lines[0] and "is back" in lines[1], lines
    # the first item's uncommitted verdict was rolled back with the interrupted check: the
    # state never claims what the archive may not have
    pipeline.service.item_done(item)
    state = pipeline.service.state
    assert state.get_url(second["url"]) is not None and state.get_url(first["url"]) is None
