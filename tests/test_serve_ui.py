"""``govcrawl index`` + ``govcrawl serve`` driven in real Chromium (Playwright, Debian's chromium).

The archive is an offline crawl of the bundled cassettes plus a second liuzhi crawl with an edited
article (two versions; one added line's text is ``<script>alert(1)</script>``), see
tests/crawled_archive.py. The server runs on a free 127.0.0.1 port and is stopped after.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_govcrawl
from tests.crawled_archive import (
    ATXLYJ_PDF_URL,
    BODY_PHRASE,
    HOSTILE_LINE,
    LIUZHI_TITLE,
    LIUZHI_URL,
    NEW_FIGURE,
    OLD_FIGURE,
    crawled,  # noqa: F401 (fixture)
    free_port,
)

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def server(crawled) -> Iterator[str]:  # noqa: F811
    """``govcrawl index`` then ``govcrawl serve`` on the crawled archive; yields the base URL."""
    run_govcrawl("index", *crawled.args(), cwd=crawled.root, check=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", *crawled.args(), "--port", str(port)],
        cwd=crawled.root, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):  # bounded: 30 s
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {proc.stdout.read()}")
            try:
                if get(base + "/")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("serve did not answer in 30 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that records dialogs and every URL it requests."""
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs, pg.requested = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


def doc_id_of(base: str, url: str) -> str:
    query = urllib.parse.urlencode({"_shape": "array", "_col": "url", "url": url})
    status, _, body = get(f"{base}/index/documents.json?{query}")
    rows = json.loads(body)
    assert status == 200 and len(rows) == 1
    return rows[0]["doc_id"]


def test_search_finds_a_document_by_a_phrase_of_its_body(page, server, tmp_path):
    page.goto(server + "/")
    page.fill("input[name=q]", BODY_PHRASE)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("li.hit")
    titles = page.locator("li.hit a.title").all_inner_texts()
    assert titles == [LIUZHI_TITLE]
    assert page.locator("li.hit mark").first.inner_text() == BODY_PHRASE
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    assert (tmp_path / "search.png").stat().st_size > 0
    # a two-character word (below a trigram) still finds it, and a facet narrows the results
    page.goto(server + "/?q=" + "网格")
    assert LIUZHI_TITLE in page.locator("li.hit a.title").all_inner_texts()
    page.goto(server + "/")
    assert int(page.inner_text("#total")) == 21
    page.click("section[data-facet=site] a:text-is('liuzhi')")
    assert int(page.inner_text("#total")) == 1
    page.click("section[data-facet=site] a:text-is('liuzhi')")  # toggled off again
    page.click("section[data-facet=has_attachments] a:text-is('yes')")
    # its body is only "详请见附件": an attachment-only notice, flagged (finding attachment_only)
    assert page.locator("li.hit .meta").all_inner_texts() == [
        "atxlyj · 2021-01-08 · 1 attachment · findings"]
    assert all(u.startswith(server) for u in page.requested), "no request leaves the server"


def test_document_page_shows_metadata_versions_diff_and_attachments(page, server, tmp_path):
    doc_id = doc_id_of(server, LIUZHI_URL)
    page.goto(f"{server}/doc/{doc_id}")
    assert page.inner_text("#doc-title") == LIUZHI_TITLE
    assert page.inner_text("td[data-field=published]") == "2023-03-28"
    assert page.inner_text("td[data-field=source]") == "六枝特区司法局"
    assert page.inner_text("td[data-field=url]") == LIUZHI_URL
    assert page.locator("table.versions tr").count() == 3  # header + v1 + v2
    deleted = page.locator("#diff .d-delete").all_inner_texts()
    inserted = page.locator("#diff .d-insert").all_inner_texts()
    assert any(OLD_FIGURE in t for t in deleted) and not any(NEW_FIGURE in t for t in deleted)
    assert any(NEW_FIGURE in t for t in inserted)
    assert any(HOSTILE_LINE in t for t in inserted)
    assert page.locator("#diff .d-skip").count() >= 1  # unchanged paragraphs folded
    page.screenshot(path=str(tmp_path / "document.png"), full_page=True)
    assert (tmp_path / "document.png").stat().st_size > 0
    # the older version against itself: no diff; v1 -> v2 chosen explicitly gives the same rows
    page.goto(f"{server}/doc/{doc_id}?a=1&b=2")
    assert page.locator("#diff .d-insert").all_inner_texts() == inserted

    # a document with an attachment: listed, downloadable with the archived bytes
    att_doc = doc_id_of(server, ATXLYJ_PDF_URL.replace(
        "P020210108586100144513.pdf", "t20210108_922970.html"))
    page.goto(f"{server}/doc/{att_doc}")
    item = page.locator("li.attachment")
    assert item.count() == 1 and "2020.1.8.pdf" in item.inner_text()
    href = item.locator("a.download").get_attribute("href")
    response = page.request.get(server + href)
    assert response.status == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    sha = href.rsplit("/", 1)[-1]
    assert hashlib.sha256(response.body()).hexdigest() == sha
    assert not page.dialogs


def test_hostile_text_is_shown_as_text_and_runs_nothing(page, server):
    doc_id = doc_id_of(server, LIUZHI_URL)
    page.goto(f"{server}/doc/{doc_id}")
    assert HOSTILE_LINE in page.inner_text("#text")
    assert page.locator("main script").count() == 0
    page.goto(server + "/?q=" + "alert(1)")
    assert "<script>alert(1)</script>" in page.inner_text("li.hit .snippet")
    # the raw capture is the archived response as plain text, never rendered
    page.goto(f"{server}/doc/{doc_id}")
    raw = page.locator("a.raw").last.get_attribute("href")
    response = page.goto(server + raw)
    assert response.headers["content-type"].startswith("text/plain")
    assert "sandbox" in response.headers["content-security-policy"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.inner_text("body")
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_crawl_reports_per_site_with_a_chart(page, server):
    page.goto(f"{server}/site/liuzhi")
    assert page.locator("table.crawls tr").count() == 3  # header + two crawls
    bars = page.locator("#crawl-chart g.bar")
    assert bars.count() == 2
    titles = [t.text_content() for t in page.locator("#crawl-chart g.bar title").all()]
    assert titles[0].endswith("1 new, 0 changed") and titles[1].endswith("0 new, 1 changed")
    assert float(page.locator("#crawl-chart rect.changed").nth(1).get_attribute("height")) > 0


def test_read_only_and_path_tricks_refused(server):
    for path in ("/doc/..%2F..%2Fetc%2Fpasswd", "/doc/../../etc/passwd", "/doc/%2e%2e",
                 "/attachment/..%2F..%2Fetc%2Fpasswd", "/attachment/" + "0" * 64,
                 "/site/..%2Fx", "/doc/nope/v1/raw"):
        assert get(server + path)[0] == 404, path
    assert get(server + "/", method="POST")[0] == 405
    assert get(server + "/-/logout", method="POST")[0] == 405
    assert get(server + "/index?sql=select+1")[0] == 403  # arbitrary SQL is off
    # errors are short pages, with their status, never a traceback
    status, _, body = get(server + "/index/documents?_search=%22")
    assert status == 400 and b"Traceback" not in body and b"sqlite3" not in body
    status, headers, _ = get(server + "/")
    assert status == 200 and "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    # the JSON API comes with Datasette, read-only
    status, _, body = get(server + "/index/documents.json?_shape=array&_col=title&_search="
                          + urllib.request.quote(BODY_PHRASE))
    assert status == 200 and [r["title"] for r in json.loads(body)] == [LIUZHI_TITLE]
