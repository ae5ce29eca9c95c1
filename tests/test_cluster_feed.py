"""``govcrawl schedule --redis URL`` feeds the cluster: due sites' start requests go to the Redis
frontier, ``govcrawl worker --redis URL`` processes crawl them (crawler/cluster_feed.py).

Redis is a real redis-server on a free 127.0.0.1 port (tests/redis_server.py), the archive moto's
S3, the sites are replayed from their cassettes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import CASSETTES, REPO, run_govcrawl
from tests.redis_server import RedisServer
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401 (fixtures)
from tests.test_cluster import local_documents, pages_fetched, s3_documents

SITES = ("liuzhi", "ningbo")


@pytest.fixture
def redis_private(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_schedule_feeds_due_sites_to_workers(
        tmp_path, redis_private, s3_server, s3_bucket):  # noqa: F811
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for site in SITES:
        shutil.copy(REPO / "spiders" / "profiles" / f"{site}.yaml", profiles)
    env = {**s3_server.env, "GOVCRAWL_PROFILES": str(profiles)}
    plain = run_govcrawl("crawl", *SITES, "--cassettes", str(CASSETTES), "--archive",
                         str(tmp_path / "plain"), "--state-dir", str(tmp_path / "plain-state"),
                         env=env, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    expected = local_documents(tmp_path / "plain")
    assert expected

    # the scheduler queues the due sites' start requests and crawls nothing itself
    schedule = ("schedule", "--once", "--redis", redis_private.url, "--state-dir",
                str(tmp_path / "sched"))
    fed = run_govcrawl(*schedule, env=env, cwd=tmp_path)
    assert fed.returncode == 0, fed.stderr[-2000:]
    status = dict(line.split(None, 1) for line in fed.stdout.splitlines())
    assert status == {site: "queued 1 start request(s)" for site in SITES}, fed.stdout
    client = redis_private.client()
    assert {s.decode() for s in client.smembers("govcrawl:fed")} == set(SITES)
    assert all(client.zcard(f"govcrawl:{site}:requests") == 1 for site in SITES)
    # due again (its record removed), but its cluster crawl has not run yet: not queued twice
    (tmp_path / "sched" / "schedule.json").unlink()
    again = run_govcrawl(*schedule, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("not queued") == len(SITES), again.stdout
    log = (tmp_path / "sched" / "schedule.log").read_text()
    assert all(f"skip {site}: its cluster crawl is still running" in log for site in SITES)
    assert all(client.zcard(f"govcrawl:{site}:requests") == 1 for site in SITES)

    # two workers crawl them together and store what one plain crawl stores
    archive = f"s3://{s3_bucket}/fed/"
    workers = [subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--once", "--redis", redis_private.url,
         "--cassettes", str(CASSETTES), "--archive", archive, "--state-dir",
         str(tmp_path / f"w{i}"), "-s", "GOVCRAWL_REDIS_WORKER_POLL=0.5"],
        cwd=tmp_path, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for i, (w, (out, err)) in enumerate(zip(workers, outputs, strict=True)):
        logs = "".join(p.read_text(errors="replace")[-1500:]
                       for p in (tmp_path / f"w{i}" / "logs").glob("*.log"))
        assert w.returncode == 0, out + err[-2000:] + logs
    assert s3_documents(s3_server, s3_bucket, "fed/") == expected
    # the workers did not queue the start requests again: the sites were crawled once
    crawled = [pages_fetched(path.read_text())
               for i in range(2) for path in (tmp_path / f"w{i}" / "logs").glob("*.worker.log")]
    assert sum(crawled) < 1.5 * pages_fetched(plain.stdout), crawled
    # the crawls are over: nothing fed is left, nor any frontier
    keys = {k.decode() for k in client.keys("*")}
    assert keys and all(k.startswith("govcrawl:dedup:") for k in keys), sorted(keys)[:10]
    s3 = s3_server.client()
    reports = [json.loads(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
               for key in s3_server.keys(s3_bucket, "fed/") if key.endswith("/report.json")]
    assert {r["site"] for r in reports} == set(SITES)  # each worker's crawl of each site


def test_a_worker_stops_cleanly_on_sigterm_and_its_site_stays_queued(
        tmp_path, redis_private, s3_server, s3_bucket):  # noqa: F811
    """A long-running worker joins the fed crawl; on SIGTERM it stops its crawl (Scrapy's clean
    stop), exits 0, and the site's crawl is left to the cluster: still fed, its requests queued
    or leased (the leases of requests it did not finish expire for another worker)."""
    import signal
    import time

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(REPO / "spiders" / "profiles" / "gzdzhrss.yaml", profiles)
    env = {**s3_server.env, "GOVCRAWL_PROFILES": str(profiles)}
    fed = run_govcrawl("schedule", "--once", "--redis", redis_private.url, "--state-dir",
                       str(tmp_path / "sched"), env=env, cwd=tmp_path)
    assert fed.returncode == 0 and "queued" in fed.stdout, fed.stderr[-2000:]
    state = tmp_path / "w"
    worker = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--redis", redis_private.url,
         "--cassettes", str(CASSETTES), "--archive", f"s3://{s3_bucket}/fed/", "--state-dir",
         str(state), "-s", "GOVCRAWL_REDIS_WORKER_POLL=0.5", "-s", "DOWNLOAD_DELAY=1",
         "-s", "RANDOMIZE_DOWNLOAD_DELAY=False"],
        cwd=tmp_path, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    crawl_log = state / "logs" / "gzdzhrss.log"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if crawl_log.exists() and "Spider opened" in crawl_log.read_text(errors="replace"):
                break
            time.sleep(0.2)
        assert worker.poll() is None, worker.communicate()[1][-2000:]
        time.sleep(2)  # the crawl is under way
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:  # the worker and its crawl (its process group)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode == 0, err[-2000:]
    log = (state / "worker.log").read_text()
    assert "join the crawl of gzdzhrss" in log and "stopping" in log and "end gzdzhrss" in log
    assert "shutdown" in crawl_log.read_text(errors="replace")  # the crawl stopped cleanly
    client = redis_private.client()
    assert client.smembers("govcrawl:fed") == {b"gzdzhrss"}
    assert client.zcard("govcrawl:gzdzhrss:requests") + client.zcard(
        "govcrawl:gzdzhrss:requests:leases") > 0


def test_schedule_with_redis_away_and_a_worker_without_s3(tmp_path, redis_private):
    """The scheduler with its Redis away queues nothing, says so (one log line per site), keeps
    the sites due and exits 1; a bad URL, or a worker with a local archive, is one line, exit 2."""
    from tests.redis_server import free_port

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(REPO / "spiders" / "profiles" / "liuzhi.yaml", profiles)
    env = {"GOVCRAWL_PROFILES": str(profiles)}
    down = f"redis://127.0.0.1:{free_port()}/0"
    proc = run_govcrawl("schedule", "--once", "--redis", down, "--state-dir", str(tmp_path / "s"),
                        env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["liuzhi", "not", "queued", "(see", "the", "log)"]
    log = (tmp_path / "s" / "schedule.log").read_text()
    assert log.count("skip liuzhi: Redis unreachable") == 1, log
    assert not (tmp_path / "s" / "schedule.json").exists()  # still due
    proc = run_govcrawl("schedule", "--once", "--redis", "http://127.0.0.1/0", env=env,
                        cwd=tmp_path)
    assert proc.returncode == 2 and "not a redis URL" in proc.stderr
    proc = run_govcrawl("worker", "--once", "--redis", redis_private.url, "--archive",
                        str(tmp_path / "a"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "s3://" in proc.stderr and not (tmp_path / "a").exists()
