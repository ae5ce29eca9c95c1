"""Dedup state: normalisation, persistence across restarts and crashes, rebuild, configuration.

The state tests run on both backends (``state_backend``: SQLite and a real redis-server)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from crawler.dedup import (
    DedupConfig,
    DedupConfigError,
    Deduplicator,
    DedupStateError,
    normalise_text,
    open_state,
    rebuild_state,
    state_uri,
    text_hash,
)
from crawler.dedup.redis_state import split_uri
from crawler.dedup.sqlite import sqlite_path
from tests.dedup_fixtures import REPO, corpus_articles, edit_text, seed_texts


def test_normalise_ignores_width_punctuation_whitespace_and_furniture():
    a = "关于印发《六枝特区2022年法治政府建设工作情况报告》的通知\n一、主要举措（试行）：第1条。"
    b = ("关于印发 «六枝特区２０２２年法治政府建设工作情况报告» 的通知\r\n\n"
         "一,主要举措(试行):第１条.  \u200b\n打印本页 关闭窗口\n【字体：大 中 小】\n浏览次数：88")
    assert normalise_text(a) == normalise_text(b)
    assert text_hash(a) == text_hash(b) and len(text_hash(a)) == 64
    # real words stay: a line mentioning 打印 in prose is content
    assert "请自行打印准考证" in normalise_text("请自行打印准考证。")
    assert normalise_text("第一条") != normalise_text("第二条")
    assert normalise_text("") == "" and normalise_text(" \n ") == ""


def test_state_uri_default_and_sqlite_paths(tmp_path):
    assert state_uri({"GOVCRAWL_STATE_DIR": ".govcrawl"}) == "sqlite:///.govcrawl/dedup.sqlite"
    assert state_uri({"GOVCRAWL_STATE_DIR": "/var/x"}) == "sqlite:////var/x/dedup.sqlite"
    assert state_uri({"GOVCRAWL_DEDUP_STATE": "redis://h/0"}) == "redis://h/0"
    assert sqlite_path("sqlite:///rel/d.sqlite") == "rel/d.sqlite"
    assert sqlite_path("sqlite:////abs/d.sqlite") == "/abs/d.sqlite"
    with pytest.raises(ValueError, match="unknown dedup state scheme"):
        open_state({"GOVCRAWL_DEDUP_STATE": "mongodb://127.0.0.1/0"})
    assert split_uri("redis://h:6380/2?prefix=gov:") == ("redis://h:6380/2", "gov:")
    assert split_uri("redis://h/0")[1] == "govcrawl:dedup:"
    with pytest.raises(DedupStateError, match="not reachable"):  # nothing listens on port 1
        open_state({"GOVCRAWL_DEDUP_STATE": "redis://127.0.0.1:1/0"})
    settings = {"GOVCRAWL_DEDUP_STATE": f"sqlite:///{tmp_path}/s.sqlite"}
    state = open_state(settings)
    other = open_state(settings)  # no process-wide instance: each caller owns the one it opened
    assert other is not state and not state.closed
    other.close()
    assert not state.closed
    state.close()


def _check_all(state, items):
    dedup = Deduplicator(state)
    return [dedup.check(url, text) for url, text in items]


def test_state_survives_close_and_reopen(state_backend):
    items = [(f"http://a.gov.cn/{i}.html", t) for i, t in enumerate(seed_texts())]
    state = state_backend.open()
    first = _check_all(state, items)
    state.close()
    state = state_backend.open()
    again = _check_all(state, items)
    assert [r.outcome for r in first] == ["new"] * len(items)
    assert [r.outcome for r in again] == ["unchanged"] * len(items)
    state.close()


CRASH_SCRIPT = """
import os, sys
from scrapy import signals
from tests.dedup_fixtures import decide, make_item, make_pipeline, seed_texts

pipeline = make_pipeline(sys.argv[1], GOVCRAWL_DEDUP_STATE=sys.argv[2])
crawler = pipeline.crawler
texts = seed_texts()
for i, text in enumerate(texts[:4]):
    item = decide(pipeline, make_item(f"http://a.gov.cn/{i}.html", text))
    crawler.signals.send_catch_log(signals.item_scraped, item=item, response=None, spider=None)
# the last item is still on its way to the archive when the process dies
decide(pipeline, make_item("http://a.gov.cn/4.html", texts[4]))
print("processed", flush=True)
os._exit(9)  # no close_spider, no commit at exit
"""


def test_state_survives_unclean_stop(state_backend, tmp_path):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH_SCRIPT), str(tmp_path),
                           state_backend.uri()],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9 and "processed" in proc.stdout, proc.stderr[-2000:]
    state = state_backend.open()
    try:
        dedup = Deduplicator(state)
        texts = seed_texts()
        # items that left the pipelines were committed even though nothing closed the state
        assert [dedup.check(f"http://a.gov.cn/{i}.html", t).outcome
                for i, t in enumerate(texts[:4])] == ["unchanged"] * 4
        # the one the archive never confirmed is not "known": it will be archived next time
        assert state.get_url("http://a.gov.cn/4.html") is None
        assert dedup.check("http://a.gov.cn/4.html", texts[4]).outcome == "new"
    finally:
        state.close()


def _snapshot(state, urls):
    recs = {u: state.get_url(u) for u in urls}
    docs = {r.doc_id for r in recs.values()}
    return (
        {u: (r.doc_id, r.version, r.text_hash) for u, r in recs.items()},
        {d: [(v.version, v.text_hash, v.url) for v in state.versions(d)] for d in docs},
        {d: (state.get_doc(d).version, state.get_doc(d).fingerprint, state.get_doc(d).signature)
         for d in docs},
        {k: v for k, v in state.counts().items()},
    )


def test_rebuild_from_records_reproduces_state(state_backend):
    arts = corpus_articles()
    seeds = seed_texts()
    crawl = [(a["url"], a["text"], a["index_no"]) for a in arts]
    crawl += [(f"http://liuzhi.gov.cn/{i}.html", t, None) for i, t in enumerate(seeds)]
    crawl += [(arts[3]["url"], arts[3]["text"] + "\n更正说明。", arts[3]["index_no"]),  # changed
              ("http://other.gov.cn/copy.html", seeds[1], None),  # duplicate
              ("http://other.gov.cn/near.html", edit_text(seeds[0], 0.01), None)]  # near dup
    original = state_backend.open("orig")
    dedup = Deduplicator(original)
    archived = []  # what the archive holds: one record per stored version
    for url, text, index_no in crawl:
        r = dedup.check(url, text, site="s", index_no=index_no)
        record = {"doc_id": r.doc_id, "version": r.version, "url": url, "index_no": index_no,
                  "text": text, "site": "s"}
        if r.outcome == "duplicate":
            record.update(outcome="duplicate", canonical_id=r.canonical_id)
        elif r.outcome == "near_duplicate":
            record.update(canonical_id=r.canonical_id, similarity=r.similarity)
        archived.append(record)
    assert {r["version"] for r in archived} == {1, 2}
    original.commit()
    urls = sorted({u for u, _, _ in crawl})

    rebuilt = state_backend.open("rebuilt")
    counts = rebuild_state(rebuilt, reversed(archived))  # any order
    assert counts["records"] == len(archived)
    assert _snapshot(rebuilt, urls) == _snapshot(original, urls)
    # and the rebuilt state makes the same decisions
    again = Deduplicator(rebuilt)
    assert {again.check(u, t, site="s", index_no=i).outcome for u, t, i in crawl[-3:]} == {
        "unchanged"}
    assert again.check("http://third.gov.cn/c.html", seeds[2]).outcome == "duplicate"
    # plain 5-tuples work too
    tuples = state_backend.open("tuples")
    rebuild_state(tuples, [(r["doc_id"], r["version"], r["url"], r["index_no"], r["text"])
                           for r in archived[:5]])
    assert tuples.counts()["docs"] == 5
    for s in (original, rebuilt, tuples):
        s.close()


def test_changed_settings_are_refused(state_backend):
    state = state_backend.open()
    Deduplicator(state, DedupConfig(num_perm=64))
    with pytest.raises(DedupConfigError, match="num_perm"):
        Deduplicator(state, DedupConfig(num_perm=128))
    state.close()


def test_two_workers_see_each_others_writes_once_committed(state_backend):
    """Two processes' states on one store (cluster workers on Redis, crawls on one SQLite file):
    a worker's writes are its own until it commits, then the other's decisions use them."""
    texts = seed_texts()
    worker_a, worker_b = state_backend.open(), state_backend.open()
    dedup_a = Deduplicator(worker_a)
    worker_a.commit()  # (SQLite has one writer at a time: each commits before the other writes)
    dedup_b = Deduplicator(worker_b)
    worker_b.commit()
    assert dedup_a.check("http://a.gov.cn/1.html", texts[0]).outcome == "new"
    assert worker_b.get_url("http://a.gov.cn/1.html") is None  # not committed yet
    worker_a.commit()
    assert worker_b.get_url("http://a.gov.cn/1.html").doc_id == \
        worker_a.get_url("http://a.gov.cn/1.html").doc_id
    copy = dedup_b.check("http://b.gov.cn/copy.html", texts[0])
    near = dedup_b.check("http://b.gov.cn/near.html", edit_text(texts[0], 0.01))
    assert (copy.outcome, near.outcome) == ("duplicate", "near_duplicate")
    assert copy.urls == ["http://a.gov.cn/1.html", "http://b.gov.cn/copy.html"]
    worker_b.rollback()  # b's item never reached the archive: nothing of it is left
    assert worker_b.get_url("http://b.gov.cn/copy.html") is None
    assert worker_a.counts() == worker_b.counts()
    assert worker_a.counts()["urls"] == 1
    worker_a.close()
    worker_b.close()


#: The SQLite schema of releases before SCHEMA_VERSION 1 (tables keyed by rowid, band keys kept
#: in ``lsh_keys``), as such a file holds it.
SCHEMA_0 = """
CREATE TABLE docs (
    doc_id TEXT PRIMARY KEY, version INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    text_hash TEXT NOT NULL, url TEXT NOT NULL, canonical_id TEXT, similarity REAL,
    signature BLOB, index_key TEXT, updated TEXT);
CREATE TABLE identities (key TEXT PRIMARY KEY, doc_id TEXT NOT NULL);
CREATE TABLE owners (fingerprint TEXT PRIMARY KEY, doc_id TEXT NOT NULL);
CREATE TABLE lsh_keys (doc BLOB PRIMARY KEY, keys BLOB NOT NULL) WITHOUT ROWID;
"""


def test_a_state_file_of_the_earlier_schema_is_migrated_on_open(tmp_path):
    """A state written before the keyed tables: opened, it is migrated in place (rows kept,
    ``lsh_keys`` dropped) and decides exactly as a state that never was in the old format."""
    import sqlite3

    from crawler.dedup.sqlite import SCHEMA_VERSION, SQLiteDedupState

    arts = [(a["url"], a["text"], a.get("index_no")) for a in corpus_articles()][:30]
    first = arts[:-4]
    later = [(u, edit_text(t, 0.02), i) for u, t, i in arts[:10]] + arts[-4:]
    later += [(u.replace("://", "://copy."), t, None) for u, t, _ in arts[:5]]

    def check_all(state, items):
        dedup = Deduplicator(state)
        return [dedup.check(u, t, index_no=i) for u, t, i in items]

    paths = [tmp_path / "old.sqlite", tmp_path / "new.sqlite"]
    for path in paths:
        state = SQLiteDedupState(path)
        check_all(state, first)
        state.commit()
        state.close()
    conn = sqlite3.connect(paths[0])  # rewrite the first file as the earlier release wrote it
    conn.executescript("".join(
        f"ALTER TABLE {t} RENAME TO new_{t};" for t in ("docs", "identities", "owners")))
    conn.executescript(SCHEMA_0)
    conn.executescript("".join(f"INSERT INTO {t} SELECT * FROM new_{t}; DROP TABLE new_{t};"
                               for t in ("docs", "identities", "owners")))
    conn.execute("INSERT INTO lsh_keys SELECT doc, x'00' FROM buckets GROUP BY doc")
    conn.execute("PRAGMA user_version=0")
    conn.commit()
    conn.close()

    old, new = SQLiteDedupState(paths[0]), SQLiteDedupState(paths[1])
    tables = dict(old.conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
    assert "lsh_keys" not in tables and "WITHOUT ROWID" in tables["docs"]
    assert old.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    counts = old.counts()
    assert counts == new.counts() and counts["docs"] > 10 and counts["identities"] > 0
    got, want = check_all(old, later), check_all(new, later)
    assert [(r.outcome, r.doc_id, r.version, r.canonical_id) for r in got] == \
        [(r.outcome, r.doc_id, r.version, r.canonical_id) for r in want]
    assert {r.outcome for r in got} >= {"changed", "new", "duplicate"}
    assert old.counts() == new.counts()
    old.close()
    new.close()
