"""ArchivePipeline inside a real Scrapy crawl (child process): threaded writes to S3, stats,
and a crawl whose S3 endpoint is down from the start (everything spooled, then flushed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import scrapy

from crawler.archive import ArchiveConfigError, open_archive
from tests.s3server import s3_env, s3_server, s3_server_private  # noqa: F401
from tests.test_archive import CRAWL, s3_opts, sequence

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys
from scrapy.crawler import CrawlerProcess
from tests.test_archive_pipeline import ItemsSpider
settings, out = json.loads(sys.argv[1]), sys.argv[2]
process = CrawlerProcess(settings)
crawler = process.create_crawler(ItemsSpider)
process.crawl(crawler)
process.start()
stats = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith(("govcrawl/", "item"))}
json.dump(stats, open(out, "w"))
"""


class ItemsSpider(scrapy.Spider):
    """Yields the test sequence of real pages as items (no network)."""

    name = "archive-items"

    async def start(self):
        for item in sequence():
            yield item


def crawl(tmp: Path, archive: str, env: dict, **extra) -> tuple[dict, subprocess.CompletedProcess]:
    settings = {
        "ITEM_PIPELINES": {"pipelines.archive.ArchivePipeline": 500},
        "GOVCRAWL_ARCHIVE": archive, "GOVCRAWL_STATE_DIR": str(tmp / "state"),
        "GOVCRAWL_CRAWL_ID": CRAWL, "LOG_LEVEL": "INFO", "TELNETCONSOLE_ENABLED": False,
        **extra,
    }
    out = tmp / "stats.json"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(settings), str(out)], cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def child_env(server) -> dict:
    import os

    return {**os.environ, **server.env}


def test_pipeline_writes_items_to_s3(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.create_bucket()
    uri = f"s3://{bucket}/crawl/"
    stats, proc = crawl(tmp_path, uri, child_env(s3_server), GOVCRAWL_ARCHIVE_THREADS=3)
    keys = [k.removeprefix("crawl/") for k in s3_server.keys(bucket)]
    archive = open_archive(uri, **s3_opts(s3_server))
    assert stats["item_scraped_count"] == 13
    assert stats["govcrawl/archive/objects"] == len(keys)
    assert stats["govcrawl/archive/bytes"] == sum(len(archive.get(k)) for k in keys)
    assert stats["govcrawl/archive/attachments"] == 2
    assert stats.get("govcrawl/archive/spooled", 0) == 0
    # same keys as the synchronous writer gives (WARC names depend on which item came first)
    from tests.test_archive import run, snapshot

    run(str(tmp_path / "local"), tmp_path / "state-local", sequence())
    local = snapshot(str(tmp_path / "local"))
    strip = lambda ks: sorted(k for k in ks if not k.endswith(".warc.gz"))  # noqa: E731
    assert strip(keys) == strip(local)
    for key in strip(keys):
        if key.endswith("/text") or "/attachments/" in f"/{key}":
            assert archive.get(key) == local[key], key
    assert archive.verify().ok
    assert "archiving to s3://" in proc.stderr


def test_crawl_with_s3_down_spools_then_flush_uploads(s3_server_private, tmp_path):  # noqa: F811
    server = s3_server_private
    bucket = server.create_bucket()
    uri = f"s3://{bucket}/a/"
    server.stop()  # S3 unreachable for the whole crawl
    env = child_env(server)
    stats, proc = crawl(tmp_path, uri, env, GOVCRAWL_S3_MAX_ATTEMPTS=1,
                        GOVCRAWL_S3_CONNECT_TIMEOUT=1)
    assert stats["item_scraped_count"] == 13  # nothing dropped
    # the items and the WARC segment (manifest lines are made when an entry is uploaded)
    assert stats["govcrawl/archive/spool_entries"] == 13 + 1
    assert stats.get("govcrawl/archive/objects", 0) == 0
    assert "spool" in proc.stderr
    server.start()
    cli = [sys.executable, "-m", "crawler.archive.cli", "archive"]
    opts = ["--archive", uri, "--state-dir", str(tmp_path / "state")]
    env = {**env, "PYTHONPATH": str(REPO)}
    flush = subprocess.run([*cli, "flush", *opts], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert flush.returncode == 0, flush.stderr
    assert "flushed 14 spool entries" in flush.stdout and "0 left" in flush.stdout
    verify = subprocess.run([*cli, "verify", *opts], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0 and verify.stdout.rstrip().endswith(": OK"), verify.stdout
    archive = open_archive(uri, **s3_opts(server))
    assert len([x for x in archive.manifest(CRAWL) if x["kind"] != "warc"]) == 13


def test_bad_archive_uri_fails_before_the_crawl():
    from scrapy.utils.test import get_crawler

    from pipelines.archive import ArchivePipeline

    crawler = get_crawler(settings_dict={"GOVCRAWL_ARCHIVE": "s3://"})
    with pytest.raises(ArchiveConfigError, match="names no bucket"):
        ArchivePipeline.from_crawler(crawler)
