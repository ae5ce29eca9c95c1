"""Cluster throughput: pages/s of 1 and 2 ``govcrawl crawl --redis`` worker processes against a
local server, and the dedup state's checks (insert + queries) per second on Redis and SQLite.

    python benchmarks/cluster_throughput.py [--pages 3000] [--workers 1 2] [--docs 5000]

Crawl: the generated site of ``benchmarks/crawl_throughput.py`` (real corpus templates, served by
its twisted.web server in a process of its own), a redis-server on a free 127.0.0.1 port (system
package, no persistence) and moto's S3 server (its own process) as the archive. Each run starts
from an empty Redis and bucket; all workers start at once with the same command; pages/s is the
articles served over the wall time from the start to the last worker's exit. Product defaults
except :data:`crawl_throughput.LOOPBACK` (no robots.txt, no AutoThrottle, per-host limit lifted),
printed first.

Dedup: the documents of ``benchmarks/dedup_throughput.py`` (new texts, exact copies, ~2% edits,
re-crawls), checked by the crawl's code path (``open_state(settings)``, ``Deduplicator`` with
``DedupConfig.from_settings``, a commit after every document as the pipeline does when no other
item is in flight), on ``redis://`` and on ``sqlite:///`` side by side in one run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.crawl_throughput import LOOPBACK, serve, write_profile  # noqa: E402
from benchmarks.dedup_throughput import documents  # noqa: E402
from tests.redis_server import RedisServer, free_port  # noqa: E402
from tests.s3server import FAKE_ENV  # noqa: E402


class MotoServer:
    """moto's S3 server in a process of its own (its CPU is not the benchmark's)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                      "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.env = {**FAKE_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}"}
        import boto3

        self.client = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                                   region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")
        for _ in range(200):  # bounded: 20 s
            try:
                self.client.list_buckets()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("moto server did not answer in 20 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def crawl(n_workers: int, base: str, args: argparse.Namespace, served, redis: RedisServer,
          s3: MotoServer, tmp: Path) -> tuple[float, int, list[int]]:
    """(wall seconds, articles served, exit codes) of ``n_workers`` workers crawling the site."""
    redis.client().flushall()
    bucket = f"bench-{n_workers}-{int(time.time())}"
    s3.client.create_bucket(Bucket=bucket)
    profile = write_profile(base, args.pages, tmp / "bench.yaml")
    env = {**os.environ, **s3.env, "GOVCRAWL_PROFILES": str(profile), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "crawler.cli", "crawl", "bench", "--redis", redis.url,
               "--archive", f"s3://{bucket}/archive/"]
    for name, value in LOOPBACK.items():
        command += ["-s", f"{name}={value}"]
    served.value = 0
    started = time.monotonic()
    procs = [subprocess.Popen([*command, "--state-dir", str(tmp / f"w{n_workers}-{i}")],
                              env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(n_workers)]
    codes = [proc.wait(timeout=3600) for proc in procs]
    return time.monotonic() - started, served.value, codes


def dedup_rate(uri: str, n_docs: int) -> tuple[float, float]:
    """(documents/s of wall time, documents per CPU second) checking ``n_docs`` on ``uri``."""
    from crawler.dedup import DedupConfig, Deduplicator, open_state
    from crawler.runner import project_settings

    settings = project_settings({"GOVCRAWL_DEDUP_STATE": uri})
    state = open_state(settings).acquire()
    dedup = Deduplicator(state, DedupConfig.from_settings(settings))
    docs = list(documents(n_docs))
    wall, cpu = time.perf_counter(), time.process_time()
    for url, text in docs:
        dedup.check(url, text, site=url.split("/")[2])
        state.commit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    state.release()
    return n_docs / wall, n_docs / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000, help="articles on the local site")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--docs", type=int, default=5000, help="documents for the dedup part")
    args = parser.parse_args()

    print("product defaults, except what a loopback benchmark must change: "
          + ", ".join(f"{k}={v}" for k, v in LOOPBACK.items())
          + "; redis-server without persistence; archive on moto's S3 server", flush=True)
    with tempfile.TemporaryDirectory(prefix="govcrawl-cluster-bench-") as tmpdir:
        tmp = Path(tmpdir)
        redis = RedisServer(tmp / "redis").start()
        s3 = MotoServer()
        port, served = multiprocessing.Value("i", 0), multiprocessing.Value("l", 0)
        server = multiprocessing.Process(target=serve, args=(args.pages, port, served),
                                         daemon=True)
        server.start()
        try:
            for _ in range(200):
                if port.value:
                    break
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port.value}"
            rates = {}
            for n in args.workers:
                wall, pages, codes = crawl(n, base, args, served, redis, s3, tmp)
                rates[n] = pages / wall
                print(f"{n} worker process(es): {pages} of {args.pages} articles in {wall:.1f} s "
                      f"= {rates[n]:.1f} pages/s (exit codes {codes})", flush=True)
            redis.client().flushall()
            redis_docs = dedup_rate(f"{redis.url}?prefix=bench:", args.docs)
            sqlite_docs = dedup_rate(f"sqlite:///{tmp}/dedup.sqlite", args.docs)
        finally:
            server.terminate()
            server.join(5)
            s3.stop()
            redis.stop()
    for name, (per_s, per_cpu) in (("redis", redis_docs), ("sqlite", sqlite_docs)):
        print(f"dedup state {name}: {per_s:.0f} documents/s (insert + queries, commit each), "
              f"{per_cpu:.0f} per CPU second of this process ({args.docs} documents)")
    scaling = " ".join(f"pages_per_s_{n}={r:.1f}" for n, r in rates.items())
    print(f"{scaling} redis_vs_sqlite={redis_docs[0] / sqlite_docs[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
