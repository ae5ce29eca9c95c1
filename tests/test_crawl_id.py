"""The crawl id is made once per crawler (crawler.addons.CrawlId) and read from its settings by
every component; the crawl report is built once (by the extension) and printed from it."""

from __future__ import annotations

import json

from scrapy.utils.test import get_crawler

from crawler.items import crawl_id
from crawler.profiles import load_profiles
from crawler.runner import project_settings
from spiders import portal
from spiders.fetch import FetchSpider


def _portal_spider_cls():
    profile = load_profiles()["ningbo"]
    return type("S", (portal.PortalSpider,), {"name": profile.name, "profile": profile})


def test_crawl_id_is_a_setting_made_once_and_shared():
    settings = {"ADDONS": project_settings().getdict("ADDONS")}  # the project's add-ons
    spider_cls = _portal_spider_cls()
    crawler = get_crawler(spider_cls, settings_dict=settings)
    made = crawler.settings.get("GOVCRAWL_CRAWL_ID")
    assert made and made.endswith("-ningbo")
    spider = spider_cls.from_crawler(crawler)
    assert spider.crawl_id == crawl_id(crawler) == made  # the spider's items carry it
    other = get_crawler(FetchSpider, settings_dict=settings)
    assert other.settings.get("GOVCRAWL_CRAWL_ID").endswith("-fetch")


def test_a_given_crawl_id_is_kept():
    settings = {"ADDONS": project_settings().getdict("ADDONS"), "GOVCRAWL_CRAWL_ID": "nightly-7"}
    crawler = get_crawler(_portal_spider_cls(), settings_dict=settings)
    assert crawl_id(crawler) == "nightly-7"


def test_cli_prints_the_report_the_extension_built():
    from types import SimpleNamespace

    from crawler.cli import crawl_report

    built = {"crawl_id": "c1", "site": "ningbo", "pages_fetched": 3}
    result = SimpleNamespace(spider="ningbo", stats={"govcrawl/report": json.dumps(built)})
    assert crawl_report(result) == built


#: ``govcrawl ARGS`` with crawler.report.build_report counted (patched before anything imports it)
COUNTING_CLI = """
import sys
import crawler.report as report
built = []
real = report.build_report
def counting(*args, **kwargs):
    built.append(real(*args, **kwargs))
    return built[-1]
report.build_report = counting
from crawler.cli import main
code = main(sys.argv[1:])
print(f"build_report calls: {len(built)}", file=sys.stderr)
sys.exit(code)
"""


def test_one_crawl_id_and_one_report_through_a_whole_crawl(tmp_path):
    """``govcrawl crawl liuzhi`` from its cassette: the spider's items, the manifest, the WARC,
    the archived report and the printed report all carry the one id the add-on made; the report
    is built once, and the log and stdout show that same report."""
    import os
    import subprocess
    import sys

    from warcio.archiveiterator import ArchiveIterator

    from tests.conftest import CASSETTES, REPO

    archive, state, log = tmp_path / "archive", tmp_path / "state", tmp_path / "crawl.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", COUNTING_CLI, "crawl", "liuzhi", "--cassettes", str(CASSETTES),
         "--archive", str(archive), "--state-dir", str(state), "-s", f"GOVCRAWL_CRAWL_LOG={log}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "build_report calls: 1" in proc.stderr

    [crawl_dir] = (archive / "crawls").iterdir()
    made = crawl_dir.name
    assert made.endswith("-liuzhi")
    report = json.loads((crawl_dir / "report.json").read_text("utf-8"))
    assert report["crawl_id"] == made
    items = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    items = [row for row in items if row["event"] == "item"]
    assert items and {row["crawl_id"] for row in items} == {made}  # the spider's
    manifest = [json.loads(line) for line in (crawl_dir / "manifest.jsonl").read_text("utf-8")
                .splitlines()]
    assert manifest and {entry["crawl_id"] for entry in manifest} == {made}  # the pipelines'
    warcs = sorted((crawl_dir / "warc").glob("*.warc.gz"))
    assert warcs
    for path in warcs:
        with path.open("rb") as fh:
            info = next(iter(ArchiveIterator(fh)))
            assert info.rec_type == "warcinfo"
            assert f"isPartOf: {made}" in info.content_stream().read().decode()

    # the table the CrawlReport extension logged is the one the CLI printed
    logged = (state / "logs" / "liuzhi.log").read_text("utf-8")
    table = logged.split("crawl report:\n", 1)[1].split("\n")[:2]
    assert proc.stdout.splitlines()[:2] == table
    assert table[1].split()[0] == "liuzhi"
