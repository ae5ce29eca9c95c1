"""``govcrawl schedule``: due/not-due logic, one crawl per site at a time, clear config errors."""

from __future__ import annotations

import fcntl
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.schedule import ScheduleError, Scheduler
from tests.conftest import CASSETTES, REPO

PROFILES = REPO / "spiders" / "profiles"


def one_line_error(proc) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_due_follows_cron_and_last_run(tmp_path: Path):
    scheduler = Scheduler({"a": "0 6 * * *", "b": "0 6 * * *", "c": "*/5 * * * *"}, tmp_path, [])
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    (tmp_path / "schedule.json").write_text(json.dumps({
        "a": (now - timedelta(hours=2)).isoformat(),   # ran at 10:00: next 06:00 is tomorrow
        "c": (now - timedelta(minutes=7)).isoformat(),  # every 5 minutes: fired at 11:55
    }))
    assert scheduler.due(now) == ["b", "c"]  # b never ran
    assert scheduler.due(now + timedelta(days=1)) == ["a", "b", "c"]


def test_bad_cron_is_a_schedule_error(tmp_path: Path):
    with pytest.raises(ScheduleError, match="bad cron expression"):
        Scheduler({"a": "61 * * * *"}, tmp_path, [])


def test_site_lock_prevents_overlapping_crawls(tmp_path: Path):
    scheduler = Scheduler({"a": "0 6 * * *"}, tmp_path, [])
    with open(scheduler.lock_dir / "a.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a crawl of "a" is running
        assert scheduler.run_site("a") is None
    assert "a" not in scheduler.last_runs()


def test_schedule_once_runs_due_sites_and_skips_the_rest(tmp_path: Path, govcrawl):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("liuzhi", "ningbo"):
        shutil.copy(PROFILES / f"{name}.yaml", profiles)
    state = tmp_path / "state"
    state.mkdir()
    (state / "schedule.json").write_text(json.dumps({"ningbo": datetime.now(UTC).isoformat()}))
    proc = govcrawl(
        "schedule", "--once", "--cassettes", str(CASSETTES), "--archive", str(tmp_path / "archive"),
        "--state-dir", str(state), env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert status == {"liuzhi": "exit 0", "ningbo": "not due"}
    runs = json.loads((state / "schedule.json").read_text())
    assert set(runs) == {"liuzhi", "ningbo"}
    reports = list((tmp_path / "archive").rglob("report.json"))
    assert [json.loads(r.read_text())["site"] for r in reports] == ["liuzhi"]
    assert "start liuzhi" in (state / "schedule.log").read_text()


def test_bad_profile_is_one_line_and_exit_2(tmp_path: Path, govcrawl):
    profile = (PROFILES / "liuzhi.yaml").read_text(encoding="utf-8")
    profile = profile.replace("name: liuzhi", "name: broken") + '\nschedule: "61 * * * *"\n'
    (tmp_path / "broken.yaml").write_text(profile, encoding="utf-8")
    for args in (["schedule", "--once"], ["sites"], ["crawl", "broken"]):
        proc = govcrawl(*args, env={"GOVCRAWL_PROFILES": str(tmp_path)}, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert "61 * * * *" in one_line_error(proc)


def test_unknown_site_and_bad_archive_uri_exit_2(tmp_path: Path, govcrawl):
    proc = govcrawl("crawl", "nosuchsite", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown site 'nosuchsite'" in one_line_error(proc)
    proc = govcrawl("crawl", "liuzhi", "--archive", "ftp://example.org/x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "archive" in one_line_error(proc)
    proc = govcrawl("crawl", "liuzhi", "--archive", "s3://", cwd=tmp_path)
    assert proc.returncode == 2
    assert "bucket" in one_line_error(proc)


def test_scheduler_stops_cleanly_on_sigterm(tmp_path: Path):
    """The long-running scheduler starts a due crawl; SIGTERM stops both cleanly (exit 0)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(PROFILES / "gzdzhrss.yaml", profiles)
    state = tmp_path / "state"
    command = [sys.executable, "-m", "crawler.cli", "schedule", "--cassettes", str(CASSETTES),
               "--archive", str(tmp_path / "archive"), "--state-dir", str(state),
               "-s", "DOWNLOAD_DELAY=1", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOVCRAWL_PROFILES": str(profiles)}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = state / "schedule.log"
    try:
        crawl_log = state / "logs" / "gzdzhrss.log"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the crawl is under way (a busy machine is slow)
            if crawl_log.exists() and "Spider opened" in crawl_log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    text = log.read_text()
    assert "scheduler stopped" in text and "end gzdzhrss" in text
    [report] = [json.loads(p.read_text()) for p in (tmp_path / "archive").rglob("report.json")]
    assert report["finish_reason"] == "shutdown"
