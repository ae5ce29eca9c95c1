"""``govcrawl index``: the SQLite index of an archive, built from its manifests, incrementally.

The archive is written by the archive writer from real pages through every dedup outcome
(tests/test_archive.py's sequence: new, duplicate, changed, near-duplicate, unchanged, a PDF found
twice, a multi-page article), on a directory and on S3 (moto on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import sqlite3
from collections import Counter

import pytest
import sqlite_utils

from crawler.archive import open_archive
from crawler.archive.layout import attachment_body_key
from crawler.archive.writer import ArchiveWriter
from crawler.index import build_index, search
from crawler.index.cli import register as _register  # noqa: F401 (the CLI module imports)
from crawler.index.search import FACETS
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401
from tests.test_archive import CORPUS, PDF, article, run, s3_opts, sequence

PDF_SHA = hashlib.sha256(PDF).hexdigest()
#: the text of the PDF as the attachment text extraction (issue 14) archives it beside the body
PDF_TEXT = "安图县林业局2020年政府信息公开工作年度报告\n一、总体情况\t主动公开信息58条"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("index")
    run(str(tmp / "arch"), tmp / "state", sequence())
    archive = open_archive(str(tmp / "arch"))
    base = attachment_body_key(PDF_SHA).rsplit("/", 1)[0]
    archive.put(f"{base}/text", PDF_TEXT.encode("utf-8"), "text/plain; charset=utf-8")
    db = tmp / "index.db"
    stats = build_index(archive, db)
    return {"tmp": tmp, "archive": archive, "db": db, "stats": stats}


def rows(db, sql, params=()):
    return [dict(r) for r in sqlite_utils.Database(db).query(sql, params)]


def assert_pairs_match_as_substrings(db) -> int:
    """Every two-character CJK word of any version's text finds, through the bigram index,
    exactly the documents whose current title/text/attachment text contain it."""
    conn = sqlite3.connect(db)
    docs = conn.execute("SELECT doc_id, title, text, attachment_text FROM documents").fetchall()
    texts = " ".join(t or "" for (t,) in conn.execute("SELECT text FROM versions"))
    pairs = {m.group(0)[i:i + 2] for m in re.finditer(r"[\u4e00-\u9fff]{2,}", texts)
             for i in range(len(m.group(0)) - 1)}
    assert len(pairs) > 500
    for pair in sorted(pairs):
        expected = {d for d, *cols in docs if any(pair in (c or "") for c in cols)}
        got = {r["doc_id"] for r in search(conn, pair, limit=1000, with_facets=False).rows}
        assert got == expected, pair
    return len(pairs)


def test_documents_versions_aliases_near_duplicates(local):
    db = local["db"]
    docs = {r["doc_id"]: r for r in rows(db, "SELECT * FROM documents")}
    assert sorted(docs) == ["d003", "d006", "d044", "d045", "d047", "d049", "d055", "d061"]
    assert docs["d044"]["version"] == 2 and docs["d044"]["versions"] == 2
    assert "470多万亩" in docs["d044"]["text"]  # the latest version's text
    versions = rows(db, "SELECT version, text FROM versions WHERE doc_id = 'd044' ORDER BY 1")
    assert [v["version"] for v in versions] == [1, 2] and "460多万亩" in versions[0]["text"]
    assert rows(db, "SELECT url, canonical_id FROM aliases") == [
        {"url": "http://www.wanzai.gov.cn/zwgk/tjgb/201705/copy.shtml", "canonical_id": "d006"}]
    assert rows(db, "SELECT doc_id, canonical_id FROM near_duplicates") == [
        {"doc_id": "d045", "canonical_id": "d044"}]
    assert docs["d003"]["last_seen"] == "2024-06-01T10:00:00Z"  # the unchanged revisit
    # the multi-page article keeps both pages' raw capture locations
    pages = json.loads(rows(db, "SELECT pages FROM versions WHERE doc_id = 'd047'")[0]["pages"])
    assert len(pages) == 2 and all(p["warc"]["length"] > 0 for p in pages)
    for doc in docs.values():
        meta = local["archive"].get_json(doc["meta_key"])
        assert (doc["title"], doc["published"], doc["index_no"]) == (
            meta["title"], meta["published"], meta["index_no"])
        assert doc["year"] == (int(meta["published"][:4]) if meta["published"] else None)


def test_attachments_with_their_text_link_to_documents(local):
    db = local["db"]
    [att] = rows(db, "SELECT * FROM attachments")
    assert att["sha256"] == PDF_SHA and att["text"] == PDF_TEXT and att["bytes"] == len(PDF)
    assert len(rows(db, "SELECT * FROM attachment_refs")) == 2  # found on two pages
    d049 = rows(db, "SELECT * FROM documents WHERE doc_id = 'd049'")[0]
    assert d049["has_attachments"] == 1 and d049["attachment_text"] == PDF_TEXT
    linked = rows(db, "SELECT doc_id, sha256, has_text FROM document_attachments "
                      "WHERE sha256 IS NOT NULL")
    assert linked == [{"doc_id": "d049", "sha256": PDF_SHA, "has_text": 1}]


def test_full_text_search_on_chinese_without_a_dictionary(local):
    conn = sqlite3.connect(local["db"])
    d044_text = rows(local["db"], "SELECT text FROM documents WHERE doc_id = 'd044'")[0]["text"]
    phrase = d044_text.splitlines()[1][5:17]  # any substring of the body: no word boundaries
    result = search(conn, phrase)
    assert "d044" in [r["doc_id"] for r in result.rows]
    assert any(hit for part, hit in result.rows[0]["snippet"] if part == phrase)
    # a phrase that is only in the attachment's text finds the notice that links it
    assert [r["doc_id"] for r in search(conn, "主动公开信息58条").rows] == ["d049"]
    # two-character words (below the trigram) still match, AND-ed with the others
    two = search(conn, "绿化 470多万亩")
    assert [r["doc_id"] for r in two.rows] == ["d044"]
    assert search(conn, "绿化 一个不存在的短语").total == 0
    # facets count the matching documents; a filter narrows them
    everything = search(conn, "")
    assert everything.total == 8
    assert sum(n for _, n in everything.facets["site"]) == 8
    assert dict(everything.facets["has_attachments"]) == {0: 7, 1: 1}
    one_site = search(conn, "", {"has_attachments": ["1"]})
    assert [r["doc_id"] for r in one_site.rows] == ["d049"]
    assert search(conn, '"公开 工作').total == 0  # an unbalanced quote is searched as text


def test_two_character_words_use_the_bigram_index_with_substring_semantics(local, tmp_path):
    assert_pairs_match_as_substrings(local["db"])
    plan = " ".join(r[3] for r in sqlite3.connect(local["db"]).execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM documents_bigrams "
        "WHERE documents_bigrams MATCH '征地'"))
    assert "VIRTUAL TABLE INDEX" in plan
    # an index built before the bigram table existed gets it, filled, when it is next opened
    old = tmp_path / "old.db"
    shutil.copy(local["db"], old)
    with sqlite3.connect(old) as conn:
        conn.execute("DROP TABLE documents_bigrams")
        for suffix in ("ai", "ad", "au"):
            conn.execute(f"DROP TRIGGER documents_bigrams_{suffix}")
    build_index(local["archive"], old)
    assert_pairs_match_as_substrings(old)


def test_update_reads_only_new_manifests(local, tmp_path):
    shutil.copytree(local["tmp"] / "arch", tmp_path / "arch")  # this test adds a crawl
    archive = open_archive(str(tmp_path / "arch"))
    db = tmp_path / "copy.db"
    build_index(archive, db)
    got: list[str] = []
    real_get = archive.store.get
    archive.store.get = lambda key: (got.append(key), real_get(key))[1]
    try:
        again = build_index(archive, db)
        assert (again.crawls_read, again.lines) == (0, 0) and got == []
        # a second crawl: one article changed again
        writer = ArchiveWriter(archive, tmp_path / "state", "20240701T000000Z-test",
                               probe_interval=0)
        writer.open()
        corrected = (CORPUS / "pages" / "006.html").read_bytes().replace(
            "万载县".encode(), "万载县人民政府".encode(), 1)
        item = article("006", "changed", "d006", version=2, body=corrected,
                       fetched_at="2024-07-01T08:00:00Z")
        item.crawl_id = "20240701T000000Z-test"
        writer.write(item)
        writer.close()
        got.clear()
        read: list[str] = []
        update = build_index(archive, db, progress=read.append)
    finally:
        archive.store.get = real_get
    assert update.crawls_read == 1 and update.versions == 1, (read, got)
    assert all(k.startswith(("crawls/20240701T000000Z-test/", "docs/")) for k in got), got
    assert not any(k.startswith("crawls/20240601T000000Z-test/") for k in got)
    d006 = rows(db, "SELECT version, versions FROM documents WHERE doc_id = 'd006'")[0]
    assert d006 == {"version": 2, "versions": 2}
    assert_pairs_match_as_substrings(db)  # the changed text re-indexed, the old one dropped


def test_index_of_an_s3_archive_matches_the_local_one(local, s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.create_bucket()
    uri = f"s3://{bucket}/gov/archive"
    run(uri, tmp_path / "state", sequence(), **s3_opts(s3_server))
    build_index(open_archive(uri, **s3_opts(s3_server)), tmp_path / "s3.db")
    columns = "doc_id, site, title, published, version, versions, text"
    assert rows(tmp_path / "s3.db", f"SELECT {columns} FROM documents ORDER BY 1") == rows(
        local["db"], f"SELECT {columns} FROM documents ORDER BY 1")


def test_cli_index_and_its_errors(local, tmp_path, govcrawl):
    db = tmp_path / "cli.db"
    proc = govcrawl("index", "--archive", str(local["tmp"] / "arch"), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "1 new or grown manifests read" in proc.stdout
    assert rows(db, "SELECT count(*) AS n FROM documents") == [{"n": 8}]
    again = govcrawl("index", "--archive", str(local["tmp"] / "arch"), "--db", str(db))
    assert again.returncode == 0 and "0 new or grown manifests read (1 unchanged)" in again.stdout
    # one index per archive; no archive at the path; a file that is no database
    other = tmp_path / "other"
    (other / "crawls").mkdir(parents=True)
    for args, message in [
        (["--archive", str(other), "--db", str(db)], "the index holds archive"),
        (["--archive", str(tmp_path / "missing"), "--db", str(tmp_path / "x.db")], "no archive"),
        (["--archive", "s3://", "--db", str(tmp_path / "y.db")], "error"),
    ]:
        proc = govcrawl("index", *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    proc = govcrawl("index", "--archive", str(local["tmp"] / "arch"), "--db", str(junk))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = govcrawl("serve", "--archive", str(local["tmp"] / "arch"), "--db",
                    str(tmp_path / "none.db"))
    assert proc.returncode == 2 and "run `govcrawl index` first" in proc.stderr


FACET_COLUMN = {name: column for name, (column, _label) in FACETS.items()}


@pytest.mark.parametrize("path", ["copied hits", "hits joined to the documents"])
def test_total_facets_and_rows_equal_a_plain_count_of_the_documents(local, monkeypatch, path):
    """Each facet counts the matches that pass every other facet's filter (its own is skipped),
    whichever way the matches' columns are read."""
    search_module = importlib.import_module("crawler.index.search")
    db = local["db"]
    if path == "hits joined to the documents":
        monkeypatch.setattr(search_module, "COPY_LIMIT", 0)
    docs = rows(db, "SELECT * FROM documents")
    sites = sorted({d["site"] for d in docs})
    phrase = docs[0]["text"].splitlines()[0][2:8]
    conn = sqlite3.connect(db)
    for query in ["", "公开", phrase]:
        for filters in [{}, {"has_attachments": ["0"]}, {"site": sites[:1], "topic": [""]},
                        {"year": ["", str(docs[0]["year"])], "has_findings": ["0", "1"]}]:
            def passes(doc, skip=None, filters=filters):
                return all(("" if doc[FACET_COLUMN[name]] is None
                            else str(doc[FACET_COLUMN[name]])) in values
                           for name, values in filters.items() if name != skip)

            matching = [d for d in docs if not query or any(
                query in (d[c] or "") for c in ("title", "text", "attachment_text"))]
            result = search(conn, query, filters, limit=1000)
            assert result.total == sum(passes(d) for d in matching), (query, filters)
            assert {r["doc_id"] for r in result.rows} == {
                d["doc_id"] for d in matching if passes(d)}
            for name, column in FACET_COLUMN.items():
                expected = Counter(d[column] for d in matching if passes(d, skip=name))
                assert dict(result.facets[name]) == dict(expected), (query, filters, name)

