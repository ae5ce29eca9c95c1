"""An archive path that is not a writable directory stops the crawl before it starts (exit 2)."""

from __future__ import annotations

import pytest

from crawler.archive import StoreError, open_archive


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/nope", "/etc/passwd/sub"])
def test_unusable_local_archive_fails_its_ping(path):
    archive = open_archive(path)
    with pytest.raises(StoreError, match="not a"):
        archive.ping()


def test_a_new_directory_is_fine(tmp_path):
    archive = open_archive(str(tmp_path / "new" / "archive"))
    archive.ping()
    assert (tmp_path / "new" / "archive").is_dir()
    assert not list((tmp_path / "new" / "archive").iterdir())  # the write probe is gone


@pytest.mark.parametrize("path", ["/etc/passwd", "/proc/nope"])
def test_crawl_into_an_unusable_archive_exits_2_before_crawling(govcrawl, tmp_path, path):
    proc = govcrawl("crawl", "liuzhi", "--cassettes", "cassettes", "--archive", path,
                    "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and path in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "spool").exists()
