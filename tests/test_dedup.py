"""Dedup pipeline on real texts: the five outcomes, identities, normalisation, stats, signals."""

from __future__ import annotations

import pytest
from scrapy import signals

from crawler.dedup import make_doc_id, text_hash
from crawler.dedup.service import StateService
from crawler.items import ATTACHMENT
from pipelines.dedup import DedupPipeline
from tests.dedup_fixtures import (
    corpus_articles,
    decide,
    edit_text,
    make_item,
    make_pipeline,
    seed_texts,
)


def run(pipeline: DedupPipeline, item):
    """process_item, then the signal Scrapy sends when the item has left every pipeline."""
    out = decide(pipeline, item)
    pipeline.crawler.signals.send_catch_log(signals.item_scraped, item=out, response=None,
                                            spider=None)
    return out


@pytest.fixture
def pipeline(tmp_path, state_backend):
    p = make_pipeline(tmp_path / "state", **state_backend.settings())
    yield p
    p.service.close()


def test_same_text_under_two_urls_is_duplicate(pipeline):
    text = seed_texts()[1]
    first = run(pipeline, make_item("http://www.liuzhi.gov.cn/zwgk/a/1.html", text)).dedup
    second = run(pipeline, make_item("http://www.liuzhi.gov.cn/xxgk/b/1.html", text)).dedup
    assert first.outcome == "new" and first.version == 1
    assert second.outcome == "duplicate"
    assert second.canonical_id == first.doc_id and second.doc_id != first.doc_id
    assert second.urls == ["http://www.liuzhi.gov.cn/zwgk/a/1.html",
                           "http://www.liuzhi.gov.cn/xxgk/b/1.html"]
    assert second.text_hash == first.text_hash == text_hash(text)


def test_two_percent_edit_is_near_duplicate(pipeline):
    for art in [a for a in corpus_articles() if len(a["text"]) > 1500][:3]:
        original = run(pipeline, make_item(art["url"], art["text"])).dedup
        edited = edit_text(art["text"], 0.02)
        assert edited != art["text"]
        near = run(pipeline, make_item(art["url"] + "?repost=1", edited)).dedup
        assert near.outcome == "near_duplicate", art["id"]
        assert near.canonical_id == original.doc_id
        assert 0.9 <= near.similarity < 1.0
        assert near.doc_id != original.doc_id and near.version == 1


def test_different_documents_are_new(pipeline):
    texts = [a["text"] for a in corpus_articles()] + list(seed_texts())
    results = [run(pipeline, make_item(f"http://example.gov.cn/{i}.html", t)).dedup
               for i, t in enumerate(texts)]
    # 010 and 011-like pages aside, the corpus holds distinct documents
    assert [r.outcome for r in results].count("new") == len(set(text_hash(t) for t in texts))
    assert len({r.doc_id for r in results}) == len(texts)


def test_recrawl_of_unchanged_pages_is_unchanged_after_restart(tmp_path, state_backend):
    arts = corpus_articles()
    p1 = make_pipeline(tmp_path / "s", **state_backend.settings())
    first = [run(p1, make_item(a["url"], a["text"], index_no=a["index_no"])).dedup for a in arts]
    p1.service.close()
    p2 = make_pipeline(tmp_path / "s", **state_backend.settings())
    again = [run(p2, make_item(a["url"], a["text"], index_no=a["index_no"])).dedup for a in arts]
    stats = p2.stats.get_stats()
    p2.service.close()
    assert {r.outcome for r in again} == {"unchanged"}
    assert [(r.doc_id, r.version) for r in again] == [(r.doc_id, r.version) for r in first]
    assert stats["govcrawl/dedup/unchanged"] == len(arts)
    assert "govcrawl/dedup/new" not in stats


def test_changed_page_gets_version_two_and_keeps_version_one(pipeline):
    art = corpus_articles()[0]
    v1 = run(pipeline, make_item(art["url"], art["text"])).dedup
    changed_text = art["text"] + "\n(更正：本文第二段数字有误，已修改。)"
    v2 = run(pipeline, make_item(art["url"], changed_text)).dedup
    assert v2.outcome == "changed" and v2.version == 2 and v2.doc_id == v1.doc_id
    history = pipeline.service.state.versions(v1.doc_id)
    assert [(v.version, v.text_hash) for v in history] == [(1, v1.text_hash), (2, v2.text_hash)]
    assert pipeline.service.state.get_url(art["url"]).version == 2
    # the changed text seen again is unchanged at version 2
    assert run(pipeline, make_item(art["url"], changed_text)).dedup.outcome == "unchanged"


def test_same_index_no_under_new_url_is_same_document(pipeline):
    art = next(a for a in corpus_articles() if a["index_no"])
    old = run(pipeline, make_item(art["url"], art["text"], index_no=art["index_no"])).dedup
    head, _, name = art["url"].rpartition("/")
    moved_url = f"{head}/moved/{name}"
    moved = run(pipeline, make_item(moved_url, art["text"], index_no=art["index_no"])).dedup
    assert moved.doc_id == old.doc_id and moved.outcome == "unchanged" and moved.version == 1
    assert set(moved.urls) == {art["url"], moved_url}
    edited = run(pipeline, make_item(moved_url + "?v=2", art["text"] + "\n补充说明。",
                                     index_no=art["index_no"])).dedup
    assert edited.doc_id == old.doc_id and edited.outcome == "changed" and edited.version == 2
    # doc_id is key-safe hex and derived from site + 索引号
    assert old.doc_id == make_doc_id(art["url"], f"test-site|{art['index_no'].upper()}")
    assert all(c in "0123456789abcdef" for c in old.doc_id) and len(old.doc_id) == 40
    # the same 索引号 on another site is another document
    other = run(pipeline, make_item("http://other.gov.cn/x.html", "另一个网站的不同内容" * 30,
                                    site="other-site", index_no=art["index_no"])).dedup
    assert other.doc_id != old.doc_id and other.outcome == "new"


def test_a_template_repeating_one_index_no_does_not_merge_different_documents(pipeline):
    """Two different reports behind the same 索引号 (a template that prints it on every page) are
    two documents, each identified by its URL; the real holder keeps the 索引号 identity."""
    texts = seed_texts()
    first = run(pipeline, make_item("http://a.gov.cn/t1.html", texts[0], index_no="SAME-2023-1"))
    second = run(pipeline, make_item("http://a.gov.cn/t2.html", texts[1], index_no="SAME-2023-1"))
    assert first.dedup.outcome == second.dedup.outcome == "new"
    assert first.dedup.doc_id != second.dedup.doc_id
    assert second.dedup.doc_id == make_doc_id("http://a.gov.cn/t2.html", None)
    again = run(pipeline, make_item("http://a.gov.cn/t2.html", texts[1], index_no="SAME-2023-1"))
    assert again.dedup.outcome == "unchanged" and again.dedup.doc_id == second.dedup.doc_id
    moved = run(pipeline, make_item("http://a.gov.cn/new/t1.html", texts[0],
                                    index_no="SAME-2023-1"))
    assert moved.dedup.doc_id == first.dedup.doc_id and moved.dedup.outcome == "unchanged"


def test_punctuation_and_whitespace_variants_are_duplicates(pipeline):
    text = seed_texts()[2]
    variant = (text.replace(",", "，").replace(":", "：").replace("(", "（").replace(")", "）")
               .replace("\n", "\n\n  ").replace("。", ". "))
    variant = "字号:[大][中][小] 打印\n浏览次数：1024\n" + variant
    assert variant != text
    a = run(pipeline, make_item("http://a.gov.cn/1.html", text)).dedup
    b = run(pipeline, make_item("http://b.gov.cn/2.html", variant)).dedup
    assert b.outcome == "duplicate" and b.canonical_id == a.doc_id
    assert b.text_hash == a.text_hash


def test_short_notices_with_same_body_but_other_titles_are_not_duplicates(pipeline):
    body = "现将有关事项予以公布，详见附件。"

    def notice(url: str, title: str, pdf: str, name: str):
        return run(pipeline, make_item(url, body, title=title,
                                       attachments=[{"url": pdf, "name": name}]))

    a = notice("http://a.gov.cn/1.html", "2023年第一批名单公示", "http://a.gov.cn/1.pdf",
               "第一批.pdf")
    b = notice("http://a.gov.cn/2.html", "2023年第二批名单公示", "http://a.gov.cn/2.pdf",
               "第二批.pdf")
    c = notice("http://b.gov.cn/9.html", "2023年第一批名单公示", "http://b.gov.cn/x.pdf",
               "第一批.pdf")
    assert a.dedup.outcome == "new" and b.dedup.outcome != "duplicate"
    assert c.dedup.outcome == "duplicate" and c.dedup.canonical_id == a.dedup.doc_id


def test_skips_attachments_and_non_documents(pipeline):
    text = seed_texts()[0]
    att = make_item("http://a.gov.cn/f.pdf", text, kind=ATTACHMENT)
    none = make_item("http://a.gov.cn/n.html", text)
    none.document = None
    challenge = make_item("http://a.gov.cn/c.html", text, is_document=False)
    for item in (att, none, challenge):
        assert run(pipeline, item).dedup is None
    assert pipeline.service.state.counts()["urls"] == 0
    assert not any(k.startswith("govcrawl/dedup/") for k in pipeline.stats.get_stats())


def test_url_records_serve_incremental_crawling(pipeline):
    art = corpus_articles()[1]
    headers = [("ETag", '"5f2-abc"'), ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")]
    item = make_item(art["url"], art["text"], headers=headers)
    item.response.requested_url = art["url"].replace("https://", "http://") + "?from=list"
    result = run(pipeline, item).dedup
    assert pipeline.service is StateService.of(pipeline.crawler)
    state = pipeline.service.state
    rec = state.get_url(art["url"])
    assert (rec.doc_id, rec.version, rec.text_hash) == (result.doc_id, 1, result.text_hash)
    assert rec.etag == '"5f2-abc"' and rec.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert rec.last_seen
    assert state.get_url(item.response.requested_url).doc_id == result.doc_id
    assert state.get_url("http://never.seen/") is None


def test_stats_count_outcomes(pipeline):
    t = seed_texts()[3]
    for url, text in [("http://a/1", t), ("http://a/2", t), ("http://a/1", t),
                      ("http://a/1", t + "补充"), ("http://a/3", edit_text(t, 0.01))]:
        run(pipeline, make_item(url, text))
    stats = pipeline.stats.get_stats()
    assert {k: v for k, v in stats.items() if k.startswith("govcrawl/dedup/")} == {
        "govcrawl/dedup/new": 1, "govcrawl/dedup/duplicate": 1, "govcrawl/dedup/unchanged": 1,
        "govcrawl/dedup/changed": 1, "govcrawl/dedup/near_duplicate": 1}


def test_archive_failure_undoes_state(pipeline):
    art = corpus_articles()[2]
    item = decide(pipeline, make_item(art["url"], art["text"]))
    pipeline.crawler.signals.send_catch_log(signals.item_error, item=item, response=None,
                                            spider=None, failure=None)
    assert pipeline.service.state.get_url(art["url"]) is None
    again = run(pipeline, make_item(art["url"], art["text"])).dedup
    assert again.outcome == "new"
    changed = decide(pipeline, make_item(art["url"], art["text"] + "\n新增一段。"))
    assert changed.dedup.outcome == "changed"
    pipeline.crawler.signals.send_catch_log(signals.item_error, item=changed, response=None,
                                            spider=None, failure=None)
    assert [v.version for v in pipeline.service.state.versions(again.doc_id)] == [1]
    retry = run(pipeline, make_item(art["url"], art["text"] + "\n新增一段。")).dedup
    assert retry.outcome == "changed" and retry.version == 2
