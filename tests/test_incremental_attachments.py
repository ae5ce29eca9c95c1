"""Issue 15, case 9a: archived attachments are known, so an incremental re-crawl of a list page
that links a PDF directly finds every document on it known and stops paging.

The column is real page 058 (安图县林业局 信息公开 > 年度报告, a TRS list) at its real URL,
minimally edited: the items whose pages were not saved are dropped, the one whose link was lost
(``javascript:;``, 2018年度决算公开) links its file directly, as TRS columns often do, and its
pager announces a second page. The article is real page 061, the PDF the real a01.pdf.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cassettes import Interaction, write_cassette
from tests.conftest import CORPUS, run_govcrawl

FILES = Path(__file__).resolve().parent / "fixtures" / "attachments"
BASE = "https://www.atxlyj.cn/xxgk/ndbg/"
LIST = BASE + "index.html"
NEXT = BASE + "index_1.html"
ARTICLE = BASE + "201903/t20190307_633608.html"  # real page 061
PDF = BASE + "201909/P020190904000000000001.pdf"  # the lost link, served as real a01.pdf
HTML = {"Content-Type": "text/html; charset=utf-8"}


def list_page() -> bytes:
    page = (CORPUS / "pages" / "058.html").read_bytes().decode("utf-8")
    items = re.findall(r"<li><span> [\d-]+ </span>.*?</li>", page)
    assert len(items) == 10
    for item in items:
        if "t20190307_633608" not in item and "javascript:;" not in item:
            page = page.replace(item, "", 1)
    lost = '<a href="javascript:;"><a href="javascript:;">'
    assert page.count(lost) == 1
    page = page.replace(lost, '<a href="201909/P020190904000000000001.pdf">'
                              '<a href="201909/P020190904000000000001.pdf">')
    assert page.count("Pager({size:1,") == 1
    return page.replace("Pager({size:1,", "Pager({size:2,").encode("utf-8")


def cassette(path: Path) -> None:
    write_cassette(path, [
        Interaction("https://www.atxlyj.cn/robots.txt", b"User-agent: *\nAllow: /\n",
                    headers={"Content-Type": "text/plain"}),
        Interaction(LIST, list_page(), headers=HTML),
        Interaction(ARTICLE, (CORPUS / "pages" / "061.html").read_bytes(), headers=HTML),
        Interaction(PDF, (FILES / "a01.pdf").read_bytes(),
                    headers={"Content-Type": "application/pdf"}),
        Interaction(NEXT, b"<html><body>404</body></html>", status=404, reason="Not Found",
                    headers=HTML),
    ])


def test_recrawl_of_a_list_linking_a_pdf_stops_at_known_documents(tmp_path):
    cassettes, profiles = tmp_path / "cassettes", tmp_path / "profiles"
    cassettes.mkdir()
    profiles.mkdir()
    cassette(cassettes / "atxlyj.yaml")
    profile = {"name": "atxlyj", "title": "吉林省安图县林业局 年度报告", "cms": "trs",
               "start_urls": [LIST], "allowed_domains": ["www.atxlyj.cn"],
               "article_patterns": [r"/xxgk/\w+/\d{6}/t\d{8}_\d+\.html$"], "max_pages": 50}
    (profiles / "atxlyj.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")

    def crawl(n: int) -> tuple[list[dict], dict[str, str]]:
        """The crawl log's records, and the crawl's row of the end table."""
        log = tmp_path / f"crawl{n}.jsonl"
        proc = run_govcrawl("crawl", "atxlyj", "--cassettes", str(cassettes), "--archive",
                            str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"),
                            "-s", f"GOVCRAWL_CRAWL_LOG={log}",
                            env={"GOVCRAWL_PROFILES": str(profiles)}, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        header, row = proc.stdout.splitlines()[:2]
        records = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
        return records, dict(zip(header.split(), row.split(), strict=True))

    def fetched(records: list[dict]) -> list[str]:
        return [r["url"] for r in records if r["event"] == "response"
                and not r["url"].endswith("/robots.txt")]

    first, table = crawl(1)
    assert set(fetched(first)) == {LIST, ARTICLE, PDF, NEXT}
    assert {(r["kind"], r["url"]) for r in first if r["event"] == "item"} == {
        ("article", ARTICLE), ("attachment", PDF)}
    assert (table["new"], table["attach"], table["known"]) == ("1", "1", "0")

    second, table = crawl(2)
    # every document the list links is known, the PDF too: neither is fetched, nor page 2
    assert fetched(second) == [LIST]
    assert (table["new"], table["attach"], table["known"]) == ("0", "0", "2")
