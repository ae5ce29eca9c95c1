"""``govcrawl schedule``: re-crawl each site on its profile's cron schedule.

Each crawl runs in its own process (a Twisted reactor cannot restart), and a per-site lock file
guarantees that two crawls of one site never overlap, even between a long-running scheduler and a
``--once`` run from cron. When each site last started is kept in ``<state>/schedule.json``, so
``--once`` knows what is due.

With ``--redis`` the scheduler crawls nothing itself: a due site's start requests go to the
cluster's frontier for ``govcrawl worker`` processes (:mod:`crawler.cluster_feed`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from crawler.profiles import cron_trigger

logger = logging.getLogger("govcrawl.schedule")


class ScheduleError(Exception):
    """A profile's schedule is unusable (bad cron expression)."""


def parse_cron(expression: str, site: str) -> CronTrigger:
    try:
        return cron_trigger(expression)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"site {site!r}: bad cron expression {expression!r}: {exc}") from None


class Scheduler:
    """Runs ``govcrawl crawl SITE`` child processes when their cron schedules say so."""

    def __init__(self, schedules: dict[str, str], state_dir: Path, crawl_args: list[str],
                 feed: Callable[[str], int | None] | None = None):
        self.triggers = {site: parse_cron(cron, site) for site, cron in schedules.items()}
        self.state_dir = state_dir
        self.crawl_args = crawl_args
        self.feed = feed  # with --redis: queue the site for the cluster's workers instead
        self.state_file = state_dir / "schedule.json"
        self.lock_dir = state_dir / "locks"
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self._children: dict[str, subprocess.Popen] = {}
        self._guard = threading.Lock()
        self.stopping = False

    # --- what is due ---------------------------------------------------------------------
    def last_runs(self) -> dict[str, str]:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _record_start(self, site: str, when: datetime) -> None:
        with self._guard:
            runs = self.last_runs()
            runs[site] = when.isoformat()
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(runs, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.state_file)

    def due(self, now: datetime | None = None) -> list[str]:
        """Sites whose schedule fired since they last started (never-run sites are due)."""
        now = now or datetime.now(UTC)
        runs = self.last_runs()
        due = []
        for site, trigger in sorted(self.triggers.items()):
            last = runs.get(site)
            if last is None:
                due.append(site)
                continue
            next_fire = trigger.get_next_fire_time(None, datetime.fromisoformat(last))
            if next_fire is not None and next_fire <= now:
                due.append(site)
        return due

    # --- running -------------------------------------------------------------------------
    @contextmanager
    def _site_lock(self, site: str) -> Iterator[bool]:
        with open(self.lock_dir / f"{site}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run_site(self, site: str) -> int | None:
        """Crawl ``site`` in a child process; None if a crawl of it is already running."""
        if self.stopping:
            return None
        with self._site_lock(site) as locked:
            if not locked:
                logger.warning("skip %s: a crawl of it is still running", site)
                return None
            if self.feed is not None:
                return self._feed(site)
            self._record_start(site, datetime.now(UTC))
            command = [sys.executable, "-m", "crawler.cli", "crawl", site, *self.crawl_args]
            log_path = self.state_dir / "logs" / f"{site}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            logger.info("start %s (log: %s)", site, log_path)
            with open(log_path, "ab") as log:
                child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
            with self._guard:
                self._children[site] = child
            code = child.wait()
            with self._guard:
                self._children.pop(site, None)
            log = logger.info if code == 0 else logger.error
            log("end %s: exit code %s", site, code)
            return code

    def _feed(self, site: str) -> int | None:
        """Queue ``site``'s start requests for the cluster; None while its crawl is running."""
        assert self.feed is not None
        started = datetime.now(UTC)
        queued = self.feed(site)
        if queued is None:
            logger.warning("skip %s: its cluster crawl is still running", site)
            return None
        self._record_start(site, started)
        logger.info("start %s: %d start request(s) queued for the cluster", site, queued)
        return queued

    def run_due(self, now: datetime | None = None) -> dict[str, int | None]:
        """``--once``: crawl every due site (one after another) and return their exit codes."""
        results = {}
        for site in self.due(now):
            if self.stopping:
                break
            results[site] = self.run_site(site)
        return results

    def stop(self) -> None:
        """Start no more crawls; ask running ones to finish (on SIGTERM Scrapy stops cleanly)."""
        self.stopping = True
        with self._guard:
            children = list(self._children.values())
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def serve(self) -> None:
        """Run forever: each site on its own cron trigger; due sites are started at once."""
        scheduler = BlockingScheduler(timezone=UTC)
        for site, trigger in self.triggers.items():
            scheduler.add_job(self.run_site, trigger, args=[site], id=site, max_instances=1,
                              coalesce=True, misfire_grace_time=3600)
        for site in self.due():
            scheduler.add_job(self.run_site, args=[site], id=f"{site}-catch-up")

        def on_term(signum: int, _frame: Any) -> None:
            logger.info("signal %s: stopping", signum)
            self.stop()
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        logger.info("scheduler started for %d site(s)", len(self.triggers))
        scheduler.start()
        # shutdown(wait=False) returns at once: wait for running crawls to end cleanly.
        with self._guard:
            children = list(self._children.values())
        for child in children:
            child.wait()
        logger.info("scheduler stopped")


def setup_logging(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("govcrawl")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(console)
    logging.getLogger("apscheduler").addHandler(handler)
