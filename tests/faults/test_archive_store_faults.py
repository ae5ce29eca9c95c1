"""Fault suite (issue 15): the archive's store and spool fail under a real crawl.

Each test crawls the bundled atxlyj cassette (two articles, one PDF, 21 links that answer 404)
with ``govcrawl crawl`` in a child process, into S3 (moto's standalone server on 127.0.0.1) behind
a fault-injecting proxy (tests/faults/s3proxy.py), and checks three things: what the user sees
(one line on stderr, the exit code), that no document is lost, and that none is stored twice,
after the documented way out (``govcrawl archive flush`` or simply running the crawl again).

| fault | user sees | way out |
|---|---|---|
| S3 403 mid-crawl | exit 1, one line: N writes kept in the spool, `archive flush` | flush |
| S3 503 SlowDown | nothing: botocore's adaptive retries absorb it, exit 0 | - |
| spool disk full (store down) | exit 1, one line: cannot spool … No space left … | re-run |
| stdout closed (``| head``) | nothing, exit 0 | - |
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from crawler.archive import open_archive
from tests.conftest import CASSETTES, REPO, run_govcrawl
from tests.faults.s3proxy import FaultProxy
from tests.s3server import S3Server, s3_env, s3_server  # noqa: F401
from tests.test_spiders import EXPECTED

SITE = "atxlyj"
WANTED = {(kind, url) for kind, url, _pages in EXPECTED[SITE]}
ACCESS_DENIED = (403, "AccessDenied", "Access Denied")
SLOW_DOWN = (503, "SlowDown", "Please reduce your request rate.")


class Store:
    """A bucket on the session's moto server, reached by the crawl through a fault proxy."""

    def __init__(self, server: S3Server, proxy: FaultProxy, tmp: Path):
        self.server, self.proxy = server, proxy
        self.bucket = server.create_bucket()
        self.uri = f"s3://{self.bucket}/arch/"
        self.state = tmp / "state"
        self.env = {**server.env, "AWS_ENDPOINT_URL": proxy.url}
        self.tmp = tmp

    def args(self) -> list[str]:
        return ["--archive", self.uri, "--state-dir", str(self.state)]

    def crawl(self, *extra: str) -> subprocess.CompletedProcess:
        return run_govcrawl("crawl", SITE, "--cassettes", str(CASSETTES), *self.args(),
                            "-s", "GOVCRAWL_ARCHIVE_PROBE_INTERVAL=0.2", *extra,
                            env=self.env, cwd=self.tmp)

    def stored(self) -> Counter[tuple[str, str]]:
        """How many times each document/attachment URL is stored (manifest lines)."""
        archive = open_archive(self.uri, endpoint_url=self.server.endpoint_url,
                               region_name="us-east-1", max_attempts=1)
        return Counter((e["kind"], e["url"]) for e in archive.entries()
                       if e.get("kind") in ("article", "attachment")
                       and e.get("outcome") != "no_document")

    def versions(self) -> list[str]:
        """Every stored version directory of every document."""
        keys = self.server.keys(self.bucket, "arch/docs/")
        return sorted({k.rsplit("/", 2)[0] for k in keys if k.endswith("/text")})

    def verify(self) -> subprocess.CompletedProcess:
        return run_govcrawl("archive", "verify", *self.args(), env=self.env, cwd=self.tmp)

    def spool_entries(self) -> list[Path]:
        spool = self.state / "spool"
        return [p for p in spool.iterdir() if p.is_dir() and p.name != "quarantine"] \
            if spool.is_dir() else []


@pytest.fixture
def store(s3_server, tmp_path):  # noqa: F811
    with FaultProxy(s3_server.endpoint_url) as proxy:
        yield Store(s3_server, proxy, tmp_path)


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def assert_complete_once(store: Store) -> None:
    """Documents lost: 0, doubled: 0 — and the archive verifies."""
    stored = store.stored()
    assert set(stored) == WANTED, "lost or extra documents"
    assert all(n == 1 for n in stored.values()), f"stored twice: {stored}"
    assert len(store.versions()) == 2  # two articles, one version each
    verify = store.verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_s3_403_mid_crawl_then_flush(store):
    puts = Counter()

    def after_three_puts(method: str, path: str):
        puts[method] += method == "PUT"
        return ACCESS_DENIED if puts["PUT"] > 3 else None  # credentials revoked mid-crawl

    store.proxy.fault = after_three_puts
    proc = store.crawl()
    assert proc.returncode == 1
    (line,) = errors(proc)
    assert "archive store failed" in line and "archive flush" in line
    kept = int(re.search(r"(\d+) writes kept in", line).group(1))
    assert kept == len(store.spool_entries()) > 0 and store.proxy.injected[403] > 0

    store.proxy.fault = None  # access restored
    flush = run_govcrawl("archive", "flush", *store.args(), env=store.env, cwd=store.tmp)
    assert flush.returncode == 0, flush.stderr
    assert f"flushed {kept} spool entries" in flush.stdout and "0 left" in flush.stdout
    assert not errors(flush)
    assert not store.spool_entries()
    assert_complete_once(store)
    again = store.crawl()  # and the next crawl stores nothing twice
    assert again.returncode == 0 and not errors(again), again.stderr
    assert_complete_once(store)


def test_s3_503_slowdown_is_absorbed_by_botocore_retries(store):
    def first_puts_slow_down(method: str, path: str):
        if method == "PUT" and store.proxy.injected[503] < 6:
            return SLOW_DOWN
        return None

    store.proxy.fault = first_puts_slow_down
    proc = store.crawl()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not errors(proc)
    assert store.proxy.injected[503] == 6  # the store did push back
    assert not store.spool_entries()  # and botocore's retries alone got every write through
    assert_complete_once(store)


@pytest.fixture
def tiny_spool(store):
    """``<state>/spool`` on a 64 KiB tmpfs (root only), unmounted after the test."""
    spool = store.state / "spool"
    spool.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(spool)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield spool
    finally:
        subprocess.run(["umount", "-l", str(spool)], check=False)


def test_spool_disk_full_while_the_store_is_down_then_rerun(store, tiny_spool):
    store.proxy.fault = lambda method, path: SLOW_DOWN if method == "PUT" else None
    proc = store.crawl("-s", "GOVCRAWL_S3_MAX_ATTEMPTS=1")
    assert proc.returncode == 1
    lines = errors(proc)
    assert any("cannot spool" in line and "No space left on device" in line for line in lines)
    assert len([line for line in lines if "cannot spool" in line]) == 1, lines
    assert "Traceback" not in proc.stderr

    # the user frees space (what was spooled stays) ...
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_spool)], check=True)
    store.proxy.fault = None  # ... and the store is back: the user runs the crawl again
    again = store.crawl()
    assert again.returncode == 0, again.stderr[-2000:]
    assert not errors(again)
    assert_complete_once(store)


def test_stdout_closed_by_the_reader(store):
    """``govcrawl crawl … | head -c0`` and ``govcrawl archive ls | head``: the crawl's work is
    done and kept; no traceback, no error."""
    def closed_stdout(*args: str) -> tuple[int, str]:
        proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=store.tmp,
                                env={**os.environ, **store.env, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stdout.close()  # the reader is gone before we write a line
        err = proc.stderr.read()
        return proc.wait(timeout=300), err

    code, err = closed_stdout("crawl", SITE, "--cassettes", str(CASSETTES), *store.args())
    assert (code, err.strip()) == (0, "")
    assert_complete_once(store)
    code, err = closed_stdout("archive", "ls", *store.args())
    assert (code, err.strip()) == (0, "")
