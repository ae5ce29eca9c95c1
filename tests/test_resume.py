"""A crawl killed with SIGKILL mid-run, then run again, archives every document exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import CASSETTES, REPO, run_govcrawl
from tests.test_spiders import EXPECTED

SITE = "gzdzhrss"  # three articles among 20 list/404 pages: slow enough to kill in the middle


def archived_urls(archive: Path) -> Counter:
    """How many stored versions each document URL has."""
    return Counter(json.loads(p.read_text())["url"] for p in (archive / "docs").rglob("meta.json"))


def test_sigkill_mid_crawl_then_rerun_archives_everything_once(tmp_path: Path):
    archive, state = tmp_path / "archive", tmp_path / "state"
    args = ["crawl", SITE, "--cassettes", str(CASSETTES), "--archive", str(archive),
            "--state-dir", str(state)]
    slow = ["-s", "DOWNLOAD_DELAY=0.4", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", *args, *slow], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (archive / "docs").exists() and archived_urls(archive):
                break  # one document is archived, the others are not yet
            time.sleep(0.05)
        assert proc.poll() is None, "the crawl ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed_with = archived_urls(archive)
    expected = {url for kind, url, _pages in EXPECTED[SITE] if kind == "article"}
    assert 1 <= sum(killed_with.values()) < len(expected)

    rerun = run_govcrawl(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = archived_urls(archive)
    assert set(final) == expected
    assert all(count == 1 for count in final.values()), final
    # and a third run finds nothing new
    again = run_govcrawl(*args, cwd=tmp_path)
    assert again.returncode == 0
    assert archived_urls(archive) == final


def test_sigterm_does_not_send_what_is_queued_and_a_rerun_completes(tmp_path: Path):
    """Scrapy's graceful stop downloads every request already taken from the scheduler, one
    ``DOWNLOAD_DELAY`` apart (a minute or more for ``crawl --all``); ours sends none of them."""
    archive, state = tmp_path / "archive", tmp_path / "state"
    args = ["crawl", SITE, "--cassettes", str(CASSETTES), "--archive", str(archive),
            "--state-dir", str(state)]
    slow = ["-s", "DOWNLOAD_DELAY=1", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "-s", "LOG_LEVEL=DEBUG"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", *args, *slow], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (archive / "docs").exists() and archived_urls(archive):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the crawl ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=120)
    log = (state / "logs" / f"{SITE}.log").read_text(encoding="utf-8")
    after = log.split("Received SIGTERM", 1)[1]
    assert after.count("Crawled (") <= 1  # only the request in transfer (one per host here)
    dropped = int(after.split("stopping: ", 1)[1].split()[0])
    assert dropped >= 2
    assert f"{SITE}: stopped with {dropped} requests not sent" in out
    assert "CrawlStopped" not in out and "Download failed" not in after
    assert proc.returncode == 1  # interrupted, with its report

    rerun = run_govcrawl(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = archived_urls(archive)
    assert set(final) == {url for kind, url, _pages in EXPECTED[SITE] if kind == "article"}
    assert all(count == 1 for count in final.values()), final


STOP_WHILE_OPENING = '''
import os, signal
from scrapy import Spider, signals
from crawler.runner import GovcrawlProcess

class SlowOpen:
    """A pipeline whose open_spider takes a second (an archive store answering slowly)."""
    async def open_spider(self):
        from twisted.internet import reactor
        from twisted.internet.task import deferLater
        os.kill(os.getpid(), signal.SIGTERM)  # the stop arrives while the spider opens
        await deferLater(reactor, 1.0, lambda: None)
    def process_item(self, item):
        return item
    def close_spider(self):
        print("pipeline closed", flush=True)

class Quiet(Spider):
    name = "quiet"
    async def start(self):
        return
        yield

def closed(spider, reason):
    print("spider closed:", reason, flush=True)

process = GovcrawlProcess({"ITEM_PIPELINES": {"__main__.SlowOpen": 100}, "LOG_LEVEL": "ERROR",
                           "TELNETCONSOLE_ENABLED": False})
crawler = process.create_crawler(Quiet)
crawler.signals.connect(closed, signal=signals.spider_closed)
process.crawl(crawler)
process.start()
print("process ended", flush=True)
'''


def test_sigterm_while_the_spider_opens_still_closes_it_and_the_process_ends(tmp_path: Path):
    """Scrapy's stop of a crawler still opening only marks it stopped; its engine then waits
    for that stop forever once the spider is idle (the process never ended)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", STOP_WHILE_OPENING], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == ["pipeline closed", "spider closed: shutdown",
                                        "process ended"], proc.stderr[-2000:]


ALL_DOCUMENTS = {url for site in EXPECTED.values() for kind, url, _pages in site
                 if kind == "article"}


def state_documents(state: Path) -> set[str]:
    """The document URLs the committed dedup state knows (what the next crawl skips)."""
    import sqlite3

    db = sqlite3.connect(state / "dedup.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT url FROM urls WHERE doc_id != ''")}
    finally:
        db.close()


@pytest.mark.parametrize("load", [
    ["-s", "DOWNLOAD_DELAY=1"],  # issue 15 case 2: slow sites, killed early
    ["-s", "CONCURRENT_REQUESTS=16", "-s", "DOWNLOAD_DELAY=0.25",  # case 9b: busy pipelines
     "-s", "GOVCRAWL_STATE_COMMIT_INTERVAL=0.5"],
], ids=["delay", "concurrency16"])
def test_sigkill_of_crawl_all_then_one_rerun_completes(tmp_path: Path, load: list[str]):
    """``crawl --all`` killed with SIGKILL while documents are being archived: the committed state
    claims no document the archive lacks (verify passes), and one re-run completes the document
    set with exit 0, without errors (no missing journal, no engine assertion)."""
    archive, state = tmp_path / "archive", tmp_path / "state"
    args = ["crawl", "--all", "--cassettes", str(CASSETTES), "--archive", str(archive),
            "--state-dir", str(state)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", *args, *load], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (archive / "docs").exists() and len(archived_urls(archive)) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the crawl ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed_with = set(archived_urls(archive))
    assert 3 <= len(killed_with) < len(ALL_DOCUMENTS)
    assert state_documents(state) <= killed_with  # nothing claimed that the archive lacks
    verify = run_govcrawl("archive", "verify", "--archive", str(archive), "--state-dir",
                          str(state), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout[-2000:]

    rerun = run_govcrawl(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = archived_urls(archive)
    assert set(final) == ALL_DOCUMENTS
    assert all(count == 1 for count in final.values()), final
    log = (state / "logs" / "crawl.log").read_text("utf-8")
    for sign in ("Traceback", "AssertionError", "No such file or directory"):
        assert sign not in log, sign
    verify = run_govcrawl("archive", "verify", "--archive", str(archive), "--state-dir",
                          str(state), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout[-2000:]
