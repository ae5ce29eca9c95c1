"""Crawl order: what a fetched list page links to is crawled before more list pages.

A column's pagination is cheap to follow and its articles are not (extraction), so a scheduler
that takes list pages as eagerly as articles queues ever more of a site's articles (memory grows
with the site, the first documents reach the archive late). The generic spider gives its requests
priorities by role; Scrapy's scheduler serves them in that order.
"""

from __future__ import annotations

import asyncio

from scrapy.core.scheduler import Scheduler
from scrapy.utils.test import get_crawler

from crawler.cassette import OpenCassette, load_cassette, replayed_response, vcr_request
from tests.conftest import CASSETTES


def test_a_list_pages_articles_are_scheduled_before_its_next_page():
    from spiders import PROFILE_SPIDERS

    cls = PROFILE_SPIDERS["wanzai"]  # a real UCAP column page: articles and a 下一页 link
    # Scrapy's default queue (DownloaderAwarePriorityQueue) needs a running engine; it keeps one
    # ScrapyPriorityQueue per download slot, and a column is one host: one slot
    crawler = get_crawler(cls, {"SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue"})
    spider = cls.from_crawler(crawler)
    crawler.spider = spider
    [start] = asyncio.run(_first(spider))
    recorded = OpenCassette(load_cassette(CASSETTES / "wanzai.yaml")).replay(vcr_request(start))
    produced = list(spider.parse_list(replayed_response(start, recorded)))
    roles = [r.meta["govcrawl_role"] for r in produced]
    assert "page" in roles and roles.count("article") >= 1, roles

    scheduler = Scheduler.from_crawler(crawler)
    scheduler.open(spider)
    for request in produced:
        assert scheduler.enqueue_request(request)
    served = []
    while (request := scheduler.next_request()) is not None:
        served.append(request.meta["govcrawl_role"])
    scheduler.close("finished")
    assert sorted(served) == sorted(roles)
    first_list = min(i for i, role in enumerate(served) if role in ("list", "page"))
    assert all(role in ("list", "page") for role in served[first_list:]), served


async def _first(spider):
    return [r async for r in spider.start()]
