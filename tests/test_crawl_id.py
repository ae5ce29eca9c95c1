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
