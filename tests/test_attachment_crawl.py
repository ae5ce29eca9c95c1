"""Attachments in the crawl path, against a local server serving real files: every stored
attachment gets its text archived beside it, and a notice whose body is only its attachments gets
their text as its searchable text, apart from its body."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import CORPUS, local_server, run_govcrawl

FILES = Path(__file__).resolve().parent / "fixtures" / "attachments"
NOTICE = "/xxgk/ndbg/202101/t20210108_922970.html"  # real page 049: "详请见附件" + a PDF
PDF = "/xxgk/ndbg/202101/P020210108586100144513.pdf"  # 049's file is lost: served as real a01.pdf
ARTICLE = "/xxgk/ndbg/202101/t20210109_922971.html"  # real page 055: a body of its own
DOCX = "/xxgk/ndbg/202101/P020210109000000000001.docx"  # real a02.docx, linked from the list
IMAGE = "/xxgk/ndbg/202101/t20210110_922972.html"  # a real PNG served as a page (text/html)
#: real page 049 minimally edited: its attachment is named in Chinese (as most are on real
#: portals), so the page's link and the fetched (percent-encoded) URL differ; served as a05.xls
CJK_NOTICE = "/xxgk/ndbg/202101/t20210111_922973.html"
CJK_FILE = "价格行情 2020.xls"
CJK_PATH = "/xxgk/ndbg/202101/" + urllib.parse.quote(CJK_FILE)


def cjk_notice() -> bytes:
    page = (CORPUS / "pages" / "049.html").read_bytes()
    old = b'<a href="./P020210108586100144513.pdf">2020.1.8.pdf<BR></a>'
    assert page.count(old) == 1
    new = f'<a href="./{CJK_FILE}">{CJK_FILE}<BR></a>'.encode()
    return page.replace(old, new)


class Site(http.server.BaseHTTPRequestHandler):
    files = {
        NOTICE: ((CORPUS / "pages" / "049.html").read_bytes(), "text/html; charset=utf-8"),
        PDF: ((FILES / "a01.pdf").read_bytes(), "application/pdf"),
        ARTICLE: ((CORPUS / "pages" / "055.html").read_bytes(), "text/html; charset=utf-8"),
        DOCX: ((FILES / "a02.docx").read_bytes(), "application/octet-stream"),
        IMAGE: ((FILES / "git-logo.png").read_bytes(), "text/html"),
        CJK_NOTICE: (cjk_notice(), "text/html; charset=utf-8"),
        CJK_PATH: ((FILES / "a05.xls").read_bytes(), "application/vnd.ms-excel"),
    }
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        Site.seen.append(self.path)
        if self.path == "/robots.txt":
            return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
        if self.path == "/xxgk/ndbg/index.html":
            links = "".join(f'<li><a href="{p}">年度报表{i}</a></li>'
                            for i, p in enumerate((NOTICE, ARTICLE, IMAGE, DOCX, CJK_NOTICE)))
            page = f"<html><body><ul class='list'>{links}</ul></body></html>"
            return self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
        if self.path in self.files:
            return self._send(200, *self.files[self.path])
        self._send(404, b"not found", "text/plain")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def crawled(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("attach")
    Site.seen = []
    with local_server(Site) as base:
        profile = {"name": "local", "title": "本地测试站",
                   "start_urls": [f"{base}/xxgk/ndbg/index.html"], "allowed_domains": ["127.0.0.1"],
                   "article_patterns": [r"/xxgk/\w+/\d{6}/t\d{8}_\d+\.html$"]}
        (tmp / "local.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
        run_govcrawl("crawl", "local", "--archive", str(tmp / "archive"), "--state-dir",
                     str(tmp / "state"), "-s", "AUTOTHROTTLE_ENABLED=False",
                     env={"GOVCRAWL_PROFILES": str(tmp)}, cwd=tmp, check=True)
    return tmp / "archive"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def docs(archive: Path) -> dict[str, tuple[dict, Path]]:
    """URL path -> (meta.json, version directory) of every stored document version."""
    out = {}
    for meta_path in archive.glob("docs/*/*/v*/meta.json"):
        meta = json.loads(meta_path.read_text("utf-8"))
        out[meta["url"].split("127.0.0.1", 1)[1].split("/", 1)[1]] = (meta, meta_path.parent)
    return {"/" + k: v for k, v in out.items()}


@pytest.mark.parametrize("name, fmt, must", [
    ("a01.pdf", "pdf", "常住人口性别比"), ("a02.docx", "docx", "最低学历")])
def test_every_stored_attachment_has_its_text_beside_it(crawled: Path, name, fmt, must):
    digest = sha(FILES / name)
    base = crawled / "attachments" / digest[:2] / digest
    assert (base / "body").read_bytes() == (FILES / name).read_bytes()
    text = (base / "text").read_text("utf-8")
    assert must in text
    meta = json.loads((base / "text.json").read_text("utf-8"))
    assert meta["format"] == fmt and meta["chars"] == len(text) and meta["needs_ocr"] is False
    assert meta["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    if fmt == "pdf":
        assert meta["pages"] == 13


def test_attachment_only_notice_gets_their_text_apart_from_its_body(crawled: Path):
    meta, vdir = docs(crawled)[NOTICE]
    body = (vdir / "text").read_text("utf-8")
    extra = (vdir / "attachment_text").read_text("utf-8")
    assert "2021 年深圳市社会性别统计报告" in extra and "常住人口性别比" in extra
    assert "常住人口性别比" not in body  # kept apart from the page's own body
    assert "attachment_only" in meta["findings"]
    assert meta["keys"]["attachment_text"].endswith("/v1/attachment_text")
    [source] = meta["attachment_text"]["sources"]
    assert source["sha256"] == sha(FILES / "a01.pdf") and source["format"] == "pdf"
    assert meta["attachment_text"]["chars"] == len(extra)
    # the attachment was fetched once, before the notice was archived (its text was ready)
    assert Site.seen.count(PDF) == 1 and Site.seen.index(PDF) > Site.seen.index(NOTICE)


def test_article_with_a_body_gets_no_attachment_text(crawled: Path):
    meta, vdir = docs(crawled)[ARTICLE]
    assert "attachment_text" not in meta and not (vdir / "attachment_text").exists()
    assert "attachment_only" not in meta["findings"]


def test_image_served_as_a_page_is_not_a_document(crawled: Path):
    assert IMAGE in Site.seen
    assert IMAGE not in docs(crawled)
    [manifest] = crawled.glob("crawls/*/manifest.jsonl")
    lines = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    assert not any(line.get("url", "").endswith(IMAGE) for line in lines
                   if line.get("outcome") not in (None, "no_document"))


@pytest.fixture(scope="module")
def indexed(crawled: Path) -> Path:
    """``govcrawl index`` of the crawled archive; the index database's path."""
    db = crawled.parent / "index.db"
    run_govcrawl("index", "--archive", str(crawled), "--state-dir", str(crawled.parent / "state"),
                 "--db", str(db), cwd=crawled.parent, check=True)
    return db


def test_index_finds_an_attachment_only_notice_by_a_word_of_its_attachment(crawled: Path,
                                                                           indexed: Path):
    from crawler.index import search

    meta, _ = docs(crawled)[NOTICE]
    body = (crawled / meta["keys"]["text"]).read_text("utf-8")
    conn = sqlite3.connect(indexed)
    for words in ("常住人口性别比", "社会性别统计报告"):  # only in a01.pdf, not in the page
        assert words not in body and words not in meta["title"]
        assert [r["doc_id"] for r in search(conn, words).rows] == [meta["doc_id"]]
    # the notice's row carries the PDF's text as archived beside it, and the PDF is linked
    [(text,)] = conn.execute("SELECT attachment_text FROM documents WHERE doc_id = ?",
                             [meta["doc_id"]]).fetchall()
    digest = sha(FILES / "a01.pdf")
    assert text == (crawled / "attachments" / digest[:2] / digest / "text").read_text("utf-8")
    [(linked,)] = conn.execute("SELECT sha256 FROM document_attachments WHERE doc_id = ?",
                               [meta["doc_id"]]).fetchall()
    assert linked == digest


def test_index_links_an_attachment_named_in_chinese(crawled: Path, indexed: Path):
    from crawler.index import search

    meta, vdir = docs(crawled)[CJK_NOTICE]
    assert "晚籼米" in (vdir / "attachment_text").read_text("utf-8")  # the crawl linked it
    conn = sqlite3.connect(indexed)
    assert [r["doc_id"] for r in search(conn, "晚籼米").rows] == [meta["doc_id"]]
    [(linked, has_text)] = conn.execute(
        "SELECT sha256, has_text FROM document_attachments WHERE doc_id = ?",
        [meta["doc_id"]]).fetchall()
    assert linked == sha(FILES / "a05.xls") and has_text == 1


def test_document_page_shows_the_attachment_text_escaped(crawled: Path, indexed: Path):
    from crawler.archive import open_archive
    from crawler.serve.app import make_datasette

    meta, _ = docs(crawled)[NOTICE]
    ds = make_datasette(indexed, open_archive(str(crawled)))
    response = asyncio.run(ds.client.get(f"/doc/{meta['doc_id']}"))
    assert response.status_code == 200
    html = response.text
    assert "常住人口性别比" in html and "2021 年深圳市社会性别统计报告" in html
    # a01.pdf says "R&D 就业人员": shown as text (escaped), not as markup
    assert "R&amp;D 就业人员" in html and "R&D 就业人员" not in html


def test_an_index_from_before_the_attachment_sha256_column_is_updated(crawled: Path,
                                                                      indexed: Path):
    """Its links get the sha256 of what was fetched at their canonical URL (no meta.json read
    again), and serve refuses it until `govcrawl index` has updated it."""
    import shutil

    from crawler.index import search

    old = indexed.parent / "old-index.db"
    shutil.copy(indexed, old)
    conn = sqlite3.connect(old)  # as an older `govcrawl index` left it
    conn.execute("DROP VIEW document_attachments")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name = 'doc_attachments' AND sql LIKE '%sha256%'").fetchall():
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("ALTER TABLE doc_attachments DROP COLUMN sha256")
    conn.commit()
    conn.close()
    args = ["--archive", str(crawled), "--state-dir", str(crawled.parent / "state"),
            "--db", str(old)]
    served = run_govcrawl("serve", *args, "--port", "1", cwd=crawled.parent, timeout=60)
    assert served.returncode == 2 and "run `govcrawl index`" in served.stderr
    assert served.stderr.count("\n") == 1
    run_govcrawl("index", *args, cwd=crawled.parent, check=True)
    meta, _ = docs(crawled)[CJK_NOTICE]
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT sha256 FROM document_attachments WHERE doc_id = ?",
                            [meta["doc_id"]]).fetchall() == [(sha(FILES / "a05.xls"),)]
        assert [r["doc_id"] for r in search(conn, "晚籼米").rows] == [meta["doc_id"]]
