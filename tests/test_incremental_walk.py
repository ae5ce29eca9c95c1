"""Known documents end a column's paging only after a crawl that walked the columns to the end.

A crawl cut short (a list page that failed, SIGKILL, a CLOSESPIDER limit) archived the newest
documents of a column but not those on its later pages; the next crawl finds page 1 all known and,
if it stopped there, would never reach the rest. The site is the bundled 万载县 cassette: its
统计信息 column has two pages, one 统计公报 on each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from crawler.incremental import ColumnLog
from tests.conftest import CASSETTES, REPO, run_govcrawl

LIST = "http://www.wanzai.gov.cn/wzxrmzf/tjxx/index.shtml"
PAGE_2 = "http://www.wanzai.gov.cn/wzxrmzf/tjxx/index_1.shtml"
NEWEST = "http://www.wanzai.gov.cn/wzxrmzf/tjsja/202305/7215380191c5400397df5d7d0b5fd06b.shtml"
OLDER = "http://www.wanzai.gov.cn/wzxrmzf/tjgb/201705/9c059bf058ef4db8b3c8f920e22186fe.shtml"


def cassette_without(directory: Path, uri: str) -> Path:
    """The wanzai cassette with the interaction for ``uri`` left out (its request then fails)."""
    data = yaml.safe_load((CASSETTES / "wanzai.yaml").read_text("utf-8"))
    kept = [i for i in data["interactions"] if i["request"]["uri"] != uri]
    assert len(kept) == len(data["interactions"]) - 1
    directory.mkdir()
    (directory / "wanzai.yaml").write_text(yaml.safe_dump({**data, "interactions": kept},
                                                          allow_unicode=True), "utf-8")
    return directory


def archived(archive: Path) -> set[str]:
    return {json.loads(p.read_text("utf-8"))["url"] for p in (archive / "docs").rglob("meta.json")}


def crawl(tmp_path: Path, cassettes: Path, n: int, *settings: str, exit_code: int = 0
          ) -> list[dict]:
    """Crawl wanzai into the shared archive/state; the crawl log's response records."""
    log = tmp_path / f"crawl{n}.jsonl"
    proc = run_govcrawl("crawl", "wanzai", "--cassettes", str(cassettes), "--archive",
                        str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
                        "-s", f"GOVCRAWL_CRAWL_LOG={log}", *settings, cwd=tmp_path)
    assert proc.returncode == exit_code, proc.stderr[-3000:]
    return [r for r in map(json.loads, log.read_text("utf-8").splitlines())
            if r["event"] == "response"]


def fetched(responses: list[dict]) -> set[str]:
    return {r["url"] for r in responses if not r["url"].endswith("/robots.txt")}


def test_after_a_failed_list_page_the_next_crawl_pages_on_past_known_documents(tmp_path: Path):
    first = crawl(tmp_path, cassette_without(tmp_path / "partial", PAGE_2), 1)
    assert fetched(first) == {LIST, NEWEST}  # page 2 failed (not in the cassette)
    assert archived(tmp_path / "archive") == {NEWEST}
    assert ColumnLog(tmp_path / "state" / "columns" / "wanzai.json").walked is False

    second = crawl(tmp_path, CASSETTES, 2)
    # page 1's only document is known, yet the column is paged on: the older report is reached
    assert fetched(second) == {LIST, PAGE_2, OLDER}
    assert archived(tmp_path / "archive") == {NEWEST, OLDER}
    assert ColumnLog(tmp_path / "state" / "columns" / "wanzai.json").walked is True

    third = crawl(tmp_path, CASSETTES, 3)
    assert fetched(third) == {LIST}  # a finished walk before: known documents end the paging


def test_a_crawl_stopped_early_leaves_its_columns_to_be_walked_again(tmp_path: Path):
    crawl(tmp_path, CASSETTES, 1)
    # stopped by a CLOSESPIDER limit after its first page: not a finished walk (exit code 1)
    crawl(tmp_path, CASSETTES, 2, "-s", "CLOSESPIDER_PAGECOUNT=1", exit_code=1)
    assert ColumnLog(tmp_path / "state" / "columns" / "wanzai.json").walked is False
    assert fetched(crawl(tmp_path, CASSETTES, 3)) == {LIST, PAGE_2}


def test_a_killed_crawl_leaves_its_columns_to_be_walked_again(tmp_path: Path):
    """The mark of a crawl under way is written when the spider opens, so SIGKILL leaves it."""
    crawl(tmp_path, CASSETTES, 1)
    log = tmp_path / "state" / "columns" / "wanzai.json"
    assert ColumnLog(log).walked is True
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", "wanzai", "--cassettes", str(CASSETTES),
         "--archive", str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
         "-s", "DOWNLOAD_DELAY=60", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and ColumnLog(log).walked:
            time.sleep(0.05)
        assert proc.poll() is None, "the crawl ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert ColumnLog(log).walked is False
    assert fetched(crawl(tmp_path, CASSETTES, 3)) == {LIST, PAGE_2}


def test_column_log_reads_the_format_of_older_releases_as_an_unfinished_walk(tmp_path: Path):
    path = tmp_path / "site.json"
    path.write_text(json.dumps({LIST: 3}), "utf-8")  # the counts alone, as older releases wrote
    log = ColumnLog(path)
    assert (log.last_count(LIST), log.walked) == (3, False)
    log.save(finished=True)
    again = ColumnLog(path)
    assert (again.last_count(LIST), again.walked) == (3, True)
    again.begin()
    assert (ColumnLog(path).last_count(LIST), ColumnLog(path).walked) == (3, False)
    path.write_text("[1, 2]", "utf-8")  # not a log: ignored, with a warning
    assert (ColumnLog(path).counts, ColumnLog(path).walked) == ({}, False)
