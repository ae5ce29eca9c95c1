"""GOVCRAWL_EXTRACT_WORKERS: ``auto`` (one worker per usable CPU) by default, 0 for ``fetch``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from scrapy.utils.test import get_crawler

from crawler.runner import project_settings
from pipelines.extract import ExtractionPipeline, WorkerPool, extract_workers
from tests.conftest import CASSETTES, REPO

NINGBO = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"


def test_auto_is_the_cpus_this_process_may_use():
    usable = len(os.sched_getaffinity(0))
    assert extract_workers("auto") == extract_workers(None) == extract_workers(" AUTO ") == usable
    assert extract_workers("3") == 3 and extract_workers(0) == 0


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_bad_values_are_refused(value):
    with pytest.raises(ValueError, match="GOVCRAWL_EXTRACT_WORKERS"):
        extract_workers(value)


def test_the_project_default_is_auto():
    settings = project_settings()
    assert settings.get("GOVCRAWL_EXTRACT_WORKERS") == "auto"
    crawler = get_crawler(settings_dict={"GOVCRAWL_EXTRACT_WORKERS": "auto"})
    assert ExtractionPipeline.from_crawler(crawler).workers == len(os.sched_getaffinity(0))
    crawler = get_crawler(settings_dict={"GOVCRAWL_EXTRACT_WORKERS": "0"})
    assert ExtractionPipeline.from_crawler(crawler).workers == 0


def test_crawl_with_a_bad_value_is_one_line_exit_2(govcrawl, tmp_path):
    proc = govcrawl("crawl", "ningbo", "--cassettes", str(CASSETTES), "--archive",
                    str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
                    "-s", "GOVCRAWL_EXTRACT_WORKERS=many", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "govcrawl: error: GOVCRAWL_EXTRACT_WORKERS must be 'auto' or a number >= 0, got 'many'"]
    assert not (tmp_path / "archive").exists()


def test_fetch_of_one_url_extracts_inline(govcrawl, tmp_path):
    proc = govcrawl("fetch", NINGBO, "--cassette", str(CASSETTES / "ningbo.yaml"),
                    "--archive", str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "state" / "logs" / "fetch.log").read_text(encoding="utf-8")
    assert "extraction inline" in log and "worker processes" not in log


def _pid(_: int) -> int:
    return os.getpid()


def _die(_: int) -> int:
    os._exit(3)  # a worker killed by a hostile file or the OOM killer


def test_crawlers_of_one_process_share_one_pool_of_workers():
    """``crawl --all``: 17 crawlers in one process start 2 workers, not 34."""
    pipelines = [ExtractionPipeline(get_crawler(), workers=2) for _ in range(3)]
    for pipeline in pipelines:
        pipeline.open_spider()
    pool = pipelines[0]._pool
    assert pool is not None and all(p._pool is pool for p in pipelines)

    async def pids() -> set[int]:
        return set(await asyncio.gather(*(pool.run(_pid, n) for n in range(40))))

    assert len(asyncio.run(pids())) <= 2
    for pipeline in pipelines[:2]:
        pipeline.close_spider()
    assert asyncio.run(pool.run(_pid, 0))  # still in use by the third crawler
    pipelines[2].close_spider()
    assert WorkerPool._shared == {}
    with pytest.raises(RuntimeError):  # shut down with its last user
        asyncio.run(pool.run(_pid, 0))


def test_a_dying_worker_fails_its_task_and_new_workers_serve_the_rest():
    pool = WorkerPool.acquire(2)
    try:
        with pytest.raises(BrokenProcessPool):  # tried again in new workers, it kills those too
            asyncio.run(pool.run(_die, 0))

        async def run() -> set[int]:
            return set(await asyncio.gather(*(pool.run(_pid, n) for n in range(6))))

        assert all(isinstance(pid, int) for pid in asyncio.run(run()))
    finally:
        pool.release()


POOL_THEN_SLEEP = """
import asyncio, os, sys, time
from pipelines.extract import WorkerPool

async def pids():
    return set(await asyncio.gather(*(pool.run(os.getpid) for _ in range(8))))

pool = WorkerPool.acquire(2)
print(*asyncio.run(pids()), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_leave_with_a_sigkilled_crawl(tmp_path):
    """A crawl killed with SIGKILL leaves no extraction worker behind (they used to wait for
    tasks forever, holding the dead crawl's stdout open)."""
    proc = subprocess.Popen([sys.executable, "-c", POOL_THEN_SLEEP], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert workers and all(map(_alive, workers))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers))
        assert proc.stdout.read() == ""  # EOF: no process holds the pipe any more
    finally:
        proc.kill()
        proc.wait(timeout=30)
