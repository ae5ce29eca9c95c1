"""The crawl-scoped state service (issue 11) and its commit policy (issue 15, case 9b)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from scrapy import signals
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

from crawler.dedup.service import StateService, StateServiceMissing, StateStores
from crawler.incremental import IncrementalMiddleware
from pipelines.dedup import DedupPipeline
from tests.dedup_fixtures import STATE_EXTENSIONS, corpus_articles, make_item, seed_texts


def crawler_for(state_dir: Path, stores: StateStores | None = None, **settings):
    """A crawler as a run builds it: the run's stores given before its extensions are built."""
    crawler = get_crawler(settings_dict={"GOVCRAWL_STATE_DIR": str(state_dir),
                                         **STATE_EXTENSIONS, **settings})
    if stores is not None:  # get_crawler built the extensions already: rebuild them for the run
        crawler.govcrawl_state_stores = stores
        StateService.of(crawler).close()
        crawler.extensions.middlewares = (StateService.from_crawler(crawler),)
    return crawler


def committed_urls(state_dir: Path) -> set[str]:
    reader = sqlite3.connect(state_dir / "dedup.sqlite")  # committed rows only
    try:
        return {row[0] for row in reader.execute("SELECT url FROM urls")}
    finally:
        reader.close()


def settle(crawler, item) -> None:
    crawler.signals.send_catch_log(signals.item_scraped, item=item, response=None, spider=None)


def test_pipeline_and_middleware_use_their_crawlers_service(tmp_path):
    crawler = crawler_for(tmp_path / "s")
    service = StateService.of(crawler)
    pipeline = DedupPipeline.from_crawler(crawler)
    middleware = IncrementalMiddleware.from_crawler(crawler)
    assert pipeline.service is service and middleware.service is service
    art = corpus_articles()[0]
    item = make_item(art["url"], art["text"])
    Deferred.fromCoroutine(pipeline.process_item(item))
    settle(crawler, item)
    assert middleware._known(art["url"]).doc_id == item.dedup.doc_id
    service.close()
    assert service.state.closed


def test_crawls_of_one_run_share_one_state_and_runs_do_not(tmp_path):
    """``crawl --all``: every crawler of a run naming the state uses one instance (a text seen
    by one site is a duplicate on the other), closed by the last crawl to finish; another run
    opens its own (no process-wide table)."""
    stores = StateStores()
    a, b = crawler_for(tmp_path / "s", stores), crawler_for(tmp_path / "s", stores)
    sa, sb = StateService.of(a), StateService.of(b)
    assert sa is not sb and sa.state is sb.state
    text = seed_texts()[0]
    first = make_item("http://www.liuzhi.gov.cn/zwgk/1.html", text, site="liuzhi")
    Deferred.fromCoroutine(DedupPipeline.from_crawler(a).process_item(first))
    settle(a, first)
    copy = make_item("http://www.ningbo.gov.cn/art/1.html", text, site="ningbo")
    Deferred.fromCoroutine(DedupPipeline.from_crawler(b).process_item(copy))
    assert copy.dedup.outcome == "duplicate" and copy.dedup.canonical_id == first.dedup.doc_id
    sa.close()  # the first crawl to finish does not close it under the other
    assert not sb.state.closed and sb.known(first.url) is not None
    # nor commit the other's item in flight: its archive write is not confirmed yet
    assert committed_urls(tmp_path / "s") == {first.url}
    settle(b, copy)
    assert committed_urls(tmp_path / "s") == {first.url, copy.url}
    other = crawler_for(tmp_path / "s", StateStores())
    assert StateService.of(other).state is not sb.state  # another run: its own instance
    StateService.of(other).close()
    sb.close()
    assert sb.state.closed


def test_busy_crawl_commits_although_items_are_always_in_flight(tmp_path):
    """Items overlap (one always on its way to the archive): the state is still committed after
    GOVCRAWL_STATE_COMMIT_ITEMS decisions, by holding new items until the ones in flight are
    archived; what is committed is only what the archive confirmed."""
    crawler = crawler_for(tmp_path / "s", GOVCRAWL_STATE_COMMIT_ITEMS=3,
                          GOVCRAWL_STATE_COMMIT_INTERVAL=3600)
    pipeline = DedupPipeline.from_crawler(crawler)
    texts = [a["text"] for a in corpus_articles()][:6]
    items = [make_item(f"http://a.gov.cn/{i}.html", t) for i, t in enumerate(texts)]

    def committed() -> set[str]:
        return committed_urls(tmp_path / "s")

    loop = asyncio.new_event_loop()  # Scrapy runs process_item as an asyncio task

    def step() -> None:
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))

    try:
        runs = [loop.create_task(pipeline.process_item(items[0]))]
        step()
        for i in range(1, 6):  # item i enters while item i-1 is still in flight
            runs.append(loop.create_task(pipeline.process_item(items[i])))
            step()
            if not runs[i].done():
                break
            settle(crawler, items[i - 1])
        held = len(runs) - 1
        assert held == 3 and not runs[held].done()  # the 4th item waits for the commit
        assert committed() == set()
        settle(crawler, items[held - 1])  # the last in-flight item is archived: commit, go on
        step()
        assert runs[held].done() and items[held].dedup.outcome == "new"
        assert committed() == {i.url for i in items[:held]}  # not the one now in flight
        settle(crawler, items[held])
    finally:
        loop.close()
    StateService.of(crawler).close()
    assert committed() == {i.url for i in items[:held + 1]}


def test_dedup_stage_without_the_service_fails_loudly(tmp_path):
    """Not NotConfigured: Scrapy would drop the dedup stage and archive without dedup."""
    crawler = get_crawler(settings_dict={"GOVCRAWL_STATE_DIR": str(tmp_path / "s")})
    with pytest.raises(StateServiceMissing, match="StateService"):
        DedupPipeline.from_crawler(crawler)


def test_a_crawl_closing_with_an_item_in_flight_forgets_its_verdict(tmp_path):
    """An item that never left the pipelines has no confirmed archive write: the state, closed,
    must not claim it (the next crawl fetches it again)."""
    crawler = crawler_for(tmp_path / "s")
    service = StateService.of(crawler)
    pipeline = DedupPipeline.from_crawler(crawler)
    arts = corpus_articles()[:2]
    done, lost = (make_item(a["url"], a["text"]) for a in arts)
    Deferred.fromCoroutine(pipeline.process_item(done))
    settle(crawler, done)
    Deferred.fromCoroutine(pipeline.process_item(lost))
    assert lost.dedup.outcome == "new" and service.known(lost.url) is not None
    service.close()
    assert committed_urls(tmp_path / "s") == {done.url}
