"""A broken profile file beside good ones is reported where it is used; everything else works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "spiders" / "profiles"
CASSETTES = REPO / "cassettes"
BROKEN_YAML = "name: broken\ntitle: [unclosed\nstart_urls:\n  - http://www.example.gov.cn/\n"


@pytest.fixture()
def profiles(tmp_path: Path) -> Path:
    """A profile directory: the real liuzhi and ningbo profiles and one malformed YAML file."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in ("liuzhi", "ningbo"):
        shutil.copy(PROFILES / f"{name}.yaml", folder)
    (folder / "broken.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    return folder


def stderr_lines(proc) -> list[str]:
    assert "Traceback" not in proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_sites_lists_the_broken_profile_as_invalid(govcrawl, profiles, tmp_path):
    proc = govcrawl("sites", env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path)
    assert proc.returncode == 2
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(rows) == {"broken", "liuzhi", "ningbo"}
    assert "INVALID" in rows["broken"] and "INVALID" not in rows["liuzhi"]
    [line] = stderr_lines(proc)
    assert "broken.yaml" in line and "line 3, column 1" in line  # file and position, one line
    as_json = govcrawl("sites", "--json", env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert "invalid" in data["broken"] and data["liuzhi"]["name"] == "liuzhi"


def test_crawl_of_a_good_site_works_beside_a_broken_profile(govcrawl, profiles, tmp_path):
    env = {"GOVCRAWL_PROFILES": str(profiles)}
    proc = govcrawl("crawl", "liuzhi", "--cassettes", str(CASSETTES), "--archive",
                    str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
                    env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "archive" / "docs" / "liuzhi").rglob("meta.json"))


def test_crawl_of_the_broken_profile_is_one_line_exit_2(govcrawl, profiles, tmp_path):
    proc = govcrawl("crawl", "broken", env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path)
    assert proc.returncode == 2
    [line] = stderr_lines(proc)
    assert "broken.yaml" in line and "invalid YAML" in line and "line 3" in line


def test_fetch_works_beside_a_broken_profile(govcrawl, profiles, tmp_path):
    url = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"
    proc = govcrawl("fetch", url, "--json", "--cassette", str(CASSETTES / "ningbo.yaml"),
                    env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["text"].startswith("2022年,全市法治政府建设工作坚持")


def test_a_profile_file_that_is_not_text_is_one_invalid_profile(govcrawl, profiles, tmp_path):
    """A binary file saved as a profile (not UTF-8) is reported like any broken profile: it did
    stop every command with a UnicodeDecodeError, fetch and sites included."""
    (profiles / "image.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    env = {"GOVCRAWL_PROFILES": str(profiles)}
    listing = govcrawl("sites", env=env, cwd=tmp_path)
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "INVALID" in rows["image"] and "INVALID" not in rows["ningbo"]
    assert "image.yaml: not UTF-8 text (byte 0x89 at offset 0)" in rows["image"]
    assert "UnicodeDecodeError" not in listing.stderr
    proc = govcrawl("crawl", "image", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    [line] = stderr_lines(proc)
    assert "image.yaml: not UTF-8 text" in line
    test_fetch_works_beside_a_broken_profile(govcrawl, profiles, tmp_path)
