"""GOVCRAWL_EXTRACT_WORKERS: ``auto`` (one worker per usable CPU) by default, 0 for ``fetch``."""

from __future__ import annotations

import os

import pytest
from scrapy.utils.test import get_crawler

from crawler.runner import project_settings
from pipelines.extract import ExtractionPipeline, extract_workers
from tests.conftest import CASSETTES

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
