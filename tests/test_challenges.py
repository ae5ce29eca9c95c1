"""crawler.challenges: one detector and one table, used by the spiders and by extract().

The same response must be the same vendor's challenge (or none) on both paths, and be counted under
the same stats."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, Request
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.challenges import CHALLENGE_STATUSES, detect_challenge
from crawler.extract import extract
from crawler.items import ARTICLE, PageItem, ResponseRecord
from tests.conftest import CORPUS, REPO, load_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "challenges"
CLOUDFLARE = (FIXTURES / "cloudflare_managed_403.html").read_bytes()
CF_URL = "https://api.cryptonator.com/api/ticker/btc-usd"
CF_HEADERS = {"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare",
              "cf-mitigated": "challenge"}
MANIFEST = load_jsonl(CORPUS / "manifest.jsonl")

#: (status, headers, body, vendor): one real or minimal sample per vendor of the table.
SAMPLES = [
    (403, CF_HEADERS, CLOUDFLARE, "cloudflare"),
    (403, {"Content-Type": "text/html"}, CLOUDFLARE, "cloudflare"),  # by the body alone
    (412, {}, b'<html><meta id="9DhefwqGPrzGxEp9hPaoag"><script>$_ts=window["$_ts"];</script>',
     "ruishu"),
    (202, {}, b'<html><meta id="9DhefwqGPrzGxEp9hPaoag"><script>$_ts=window["$_ts"];</script>',
     "ruishu"),
    (521, {}, b"<script>document.cookie=('__jsl_clearance=1700000000.1|0|abc');</script>",
     "jiasule"),
    (200, {}, "<html><title>云防御</title>您的访问请求可能对网站造成安全威胁</html>".encode("gbk"),
     "yunfangyu"),
    (200, {}, b"<html><script>var arg1='3E40CBD1';document.cookie='acw_sc__v2='+x;</script>",
     "aliyun"),
]


def spider_vendor(status: int, headers: dict, body: bytes) -> str | None:
    return detect_challenge(status, headers, body)


@pytest.mark.parametrize(("status", "headers", "body", "vendor"), SAMPLES)
def test_both_paths_name_the_same_vendor(status: int, headers: dict, body: bytes,
                                         vendor: str) -> None:
    assert spider_vendor(status, headers, body) == vendor
    doc = extract(body, "http://www.example.gov.cn/a.html", headers, status)
    assert doc.challenge == vendor
    assert doc.is_document is False
    assert "waf_challenge_not_content" in doc.findings
    # a saved page (status unknown, as for `govcrawl extract`) is recognised too
    assert extract(body, "http://www.example.gov.cn/a.html").challenge == vendor


def test_cloudflare_challenge_is_a_challenge_on_both_paths() -> None:
    """The disagreement this module fixes: the spider's table had no Cloudflare entry, so a
    Cloudflare page was an HTTP 403 for the spider and a challenge for extract()."""
    assert detect_challenge(403, CF_HEADERS, CLOUDFLARE) == "cloudflare"
    assert extract(CLOUDFLARE, CF_URL, CF_HEADERS, 403).challenge == "cloudflare"


def test_cloudflare_counted_the_same_by_spider_and_pipeline() -> None:
    """The portal spider and the extraction pipeline (what `govcrawl fetch` runs) count one
    Cloudflare page under the same stats."""
    from scrapy.exceptions import DropItem

    from crawler.profiles import load_profiles
    from pipelines.extract import ExtractionPipeline
    from spiders import portal

    profile = load_profiles()["atxlyj"]
    spider_cls = type("S", (portal.PortalSpider,), {"name": profile.name, "profile": profile})
    crawler = get_crawler(spider_cls)
    crawler.stats = MemoryStatsCollector(crawler)
    spider = spider_cls.from_crawler(crawler)
    response = HtmlResponse(CF_URL, status=403, headers=CF_HEADERS, body=CLOUDFLARE,
                            request=Request(CF_URL))
    assert 403 in spider.handle_httpstatus_list
    assert spider._challenged(response) is True
    spider_stats = crawler.stats.get_stats()

    crawler2 = get_crawler(spider_cls)
    crawler2.stats = MemoryStatsCollector(crawler2)
    pipeline = ExtractionPipeline(crawler2)
    item = PageItem(site="x", kind=ARTICLE, response=ResponseRecord.from_response(response))
    with pytest.raises(DropItem):
        asyncio.run(pipeline.process_item(item))
    pipeline_stats = crawler2.stats.get_stats()
    for key in ("govcrawl/challenge_pages", "govcrawl/challenge_pages/cloudflare"):
        assert spider_stats.get(key) == pipeline_stats.get(key) == 1, key


def test_real_pages_are_not_challenges_on_either_path() -> None:
    """No saved government page is a challenge, with any status the spider lets through."""
    for row in MANIFEST:
        body = (CORPUS / "pages" / f"{row['id']}.html").read_bytes()
        for status in (200, None):
            assert detect_challenge(status, {}, body) is None, row["id"]
    for status in CHALLENGE_STATUSES:
        body = (CORPUS / "pages" / "049.html").read_bytes()
        assert detect_challenge(status, {}, body) is None


def test_protected_page_that_loaded_is_not_a_challenge() -> None:
    """A real article (corpus 049) with a 瑞数 ``$_ts`` script added, as protected sites serve
    their pages once the token is set: it shows its text, so it is a document on both paths."""
    html = (CORPUS / "pages" / "049.html").read_bytes()
    protected = html.replace(b"</head>", b"<script>$_ts=window['$_ts'];</script></head>", 1)
    assert detect_challenge(412, {}, protected) is None
    doc = extract(protected, "https://www.atxlyj.cn/xxgk/ndbg/202101/t20210108_922970.html")
    assert doc.challenge is None and doc.is_document


def test_one_table() -> None:
    assert (REPO / "crawler" / "tables" / "challenges.yaml").exists()
    for path in ("crawler/lexicons/dom.yaml", "spiders/data/listing.yaml"):
        text = (REPO / path).read_text(encoding="utf-8")
        assert "__jsl_clearance" not in text and "$_ts" not in text, path
