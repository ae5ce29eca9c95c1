"""Whole crawls from the bundled cassettes into a local archive, as README's main job runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.archive import open_archive
from tests.conftest import CASSETTES
from tests.test_spiders import EXPECTED


def archived(archive_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """(kind, url) of every document and attachment the archive's manifests say were stored."""
    out: dict[str, set[tuple[str, str]]] = {}
    for entry in open_archive(str(archive_dir)).entries():
        if entry.get("kind") in ("article", "attachment") and entry.get("outcome") != "no_document":
            out.setdefault(entry["site"], set()).add((entry["kind"], entry["url"]))
    return out


def reports(archive_dir: Path) -> dict[str, dict]:
    return {r["site"]: r for r in map(json.loads, map(Path.read_text,
                                                      archive_dir.rglob("report.json")))}


def stored_files(archive_dir: Path, top: str) -> set[str]:
    return {str(p.relative_to(archive_dir)) for p in (archive_dir / top).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def two_crawls(tmp_path_factory):
    """``govcrawl crawl --all --cassettes cassettes/`` twice, same archive and state."""
    from tests.conftest import run_govcrawl

    root = tmp_path_factory.mktemp("crawl")
    args = ("crawl", "--all", "--cassettes", str(CASSETTES), "--archive", str(root / "archive"),
            "--state-dir", str(root / "state"))
    first = run_govcrawl(*args, cwd=root)
    after_first = {top: stored_files(root / "archive", top) for top in ("docs", "attachments")}
    first_reports = reports(root / "archive")
    second = run_govcrawl(*args, cwd=root)
    return root / "archive", first, second, after_first, first_reports


def test_offline_crawl_archives_exactly_the_expected_documents(two_crawls):
    archive, first, _second, _files, _reports = two_crawls
    assert first.returncode == 0, first.stderr[-3000:]
    got = archived(archive)
    expected = {site: {(kind, url) for kind, url, _pages in items}
                for site, items in EXPECTED.items()}
    assert got == expected


def test_every_article_has_text_and_metadata(two_crawls):
    archive, *_ = two_crawls
    metas = [json.loads(p.read_text()) for p in (archive / "docs").rglob("meta.json")]
    assert len(metas) == sum(1 for items in EXPECTED.values() for i in items if i[0] == "article")
    for meta_path in (archive / "docs").rglob("meta.json"):
        meta = json.loads(meta_path.read_text())
        assert meta["title"], meta["url"]
        assert (meta_path.parent / "text").read_text(encoding="utf-8").strip(), meta["url"]
    [ningbo] = list((archive / "docs" / "ningbo").rglob("meta.json"))
    assert "bt365备用网站_365bet开户官网_365heart" in json.loads(ningbo.read_text())["spam_removed"]
    assert "bt365" not in (ningbo.parent / "text").read_text(encoding="utf-8")


def test_crawl_report_counts_match_the_archive(two_crawls):
    archive, first, _second, _files, first_reports = two_crawls
    assert set(first_reports) == set(EXPECTED)
    stored = archived(archive)
    for site, report in first_reports.items():
        articles = {u for kind, u in stored[site] if kind == "article"}
        attachments = {u for kind, u in stored[site] if kind == "attachment"}
        assert report["documents"]["new"] == len(articles), site
        assert report["attachments"] == len(attachments), site
        assert report["finish_reason"] == "finished"
        assert report["bytes_stored"] > 0
    assert first_reports["ningbo"]["spam_removed"] == 2
    assert "ningbo" in first.stdout and "new" in first.stdout  # the summary table


def test_second_crawl_archives_nothing_new(two_crawls):
    archive, _first, second, after_first, _reports = two_crawls
    assert second.returncode == 0, second.stderr[-3000:]
    for top, files in after_first.items():
        assert stored_files(archive, top) == files, top
    assert len(list(archive.rglob("report.json"))) == 2 * len(EXPECTED)
    latest = {}
    for path in archive.rglob("report.json"):
        report = json.loads(path.read_text())
        if report["site"] not in latest or report["started"] > latest[report["site"]]["started"]:
            latest[report["site"]] = report
    for site, report in latest.items():
        assert report["documents"]["new"] == 0, site
        assert report["attachments"] == 0, site


def test_liuzhi_report_printed_twice_on_the_page_is_archived_once(two_crawls):
    archive, *_ = two_crawls
    [meta] = list((archive / "docs" / "liuzhi").rglob("meta.json"))
    text = (meta.parent / "text").read_text(encoding="utf-8")
    first_paragraph = "根据《法治政府建设与责任落实督察工作规定》要求"
    last_paragraph = "更好服务法治政府建设"
    assert text.count(first_paragraph) == 1
    assert text.count(last_paragraph) == 1
    assert "黔ICP备17007817号" not in text and "使用浏览器的分享功能" not in text


def test_crawl_extracts_in_one_worker_per_usable_cpu_by_default(two_crawls):
    import os

    archive, *_ = two_crawls
    log = (archive.parent / "state" / "logs" / "crawl.log").read_text(encoding="utf-8")
    assert f"extraction in {len(os.sched_getaffinity(0))} worker processes" in log
