"""Dates on every document: ``published`` from the visible page, then ``<meta>``, then the URL,
and ``published_from`` naming which one gave it (real corpus pages, some minimally edited)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crawler.extract import extract

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = {
    rec["id"]: rec
    for rec in map(json.loads, (CORPUS / "manifest.jsonl").read_text("utf-8").splitlines())
}


def page(page_id: str) -> tuple[bytes, str]:
    return (CORPUS / "pages" / f"{page_id}.html").read_bytes(), MANIFEST[page_id]["url"]


def test_visible_label_wins() -> None:
    # 003 shows 发布日期：2016-11-22 and also has PubDate in <meta> and /art/2016/11/22/ in its URL
    body, url = page("003")
    doc = extract(body, url)
    assert (doc.published, doc.published_from) == ("2016-11-22", "page")


def test_empty_visible_date_falls_back_to_meta() -> None:
    # 003 with its visible date emptied, as restored/broken templates leave it: <meta PubDate>
    body, url = page("003")
    label = "发布日期：2016-11-22".encode()
    assert body.count(label) == 1
    edited = body.replace(label, "发布日期：".encode())
    doc = extract(edited, "http://fgw.zj.gov.cn/col/col1621004/index.html")  # no date in URL
    assert (doc.published, doc.published_from) == ("2016-11-22", "meta")


def test_meta_published_time_property() -> None:
    # the same page with the gov PubDate tag renamed to OpenGraph's article:published_time
    body, _ = page("003")
    edited = body.replace("发布日期：2016-11-22".encode(), "发布日期：".encode()).replace(
        b'<meta name="PubDate" content="2016-11-22 09:53">',
        b'<meta property="article:published_time" content="2016-11-23T09:53:00+08:00">',
    )
    doc = extract(edited, "http://fgw.zj.gov.cn/col/col1621004/index.html")
    assert (doc.published, doc.published_from) == ("2016-11-23", "meta")


def test_empty_visible_date_and_no_meta_falls_back_to_trs_url() -> None:
    # 055/060: restored TRS pages, empty 发布时间, no date <meta>; URL .../201705/t20170524_...
    for page_id, want in (("055", "2017-05-24"), ("060", "2017-08-11")):
        body, url = page(page_id)
        doc = extract(body, url)
        assert (doc.published, doc.published_from) == (want, "url"), page_id


def test_art_url_date() -> None:
    body, _ = page("003")
    edited = body.replace("发布日期：2016-11-22".encode(), "发布日期：".encode()).replace(
        b'<meta name="PubDate" content="2016-11-22 09:53">', b"")
    doc = extract(edited, "http://fgw.zj.gov.cn/art/2016/11/2/art_1621004_30332664.html")
    assert (doc.published, doc.published_from) == ("2016-11-02", "url")


def test_no_date_anywhere_is_null() -> None:
    body, url = page("055")
    doc = extract(body, "https://www.gzdzhrss.com/gzdt/xydt/index.html")
    assert (doc.published, doc.published_from) == (None, None)


def test_published_from_in_extract_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "extract", str(CORPUS / "pages" / "055.html"),
         "--url", MANIFEST["055"]["url"], "--json"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
    )
    data = json.loads(proc.stdout)
    assert data["published"] == "2017-05-24" and data["published_from"] == "url"
