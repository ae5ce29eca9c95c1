"""Browser-grade parsing: the tree is built by the HTML5 algorithm, so real pages with a stray
``</html>`` or very deep nesting extract as a browser shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crawler.extract import extract
from crawler.htmltree import parse
from crawler.pages.base import GenericPage

TESTS = Path(__file__).parent
CORPUS = TESTS / "corpus"
MANIFEST = {
    rec["id"]: rec
    for rec in map(json.loads, (CORPUS / "manifest.jsonl").read_text("utf-8").splitlines())
}


def corpus(page_id: str) -> tuple[bytes, str]:
    return (CORPUS / "pages" / f"{page_id}.html").read_bytes(), MANIFEST[page_id]["url"]


def test_stray_html_end_tag_after_header_keeps_the_article() -> None:
    body, url = corpus("007")
    edited = (TESTS / "fixtures" / "html5" / "007_stray_html_after_header.html").read_bytes()
    assert edited.replace(b"<!-- header E --></html>", b"<!-- header E -->") == body
    want = extract(body, url)
    doc = extract(edited, url)
    assert doc.text == want.text
    assert doc.text.startswith("万载县统计局") and "全年实现生产总值(GDP)262.6亿元" in doc.text
    assert "网站无障碍" not in doc.text  # the site's nav, what libxml2's tree gave as the body
    assert doc.title == want.title and doc.published == want.published


def test_content_after_stray_end_tags_is_in_body() -> None:
    root = parse("<html><head><title>t</title></head><body><div id=nav>导航</div></body></html>"
                 "<div id=art><p>正文</p></div>")
    body = root.find("body")
    assert [el.get("id") for el in body] == ["nav", "art"]


def test_page_objects_read_the_page_after_a_stray_html_end_tag() -> None:
    body, url = corpus("007")
    edited = (TESTS / "fixtures" / "html5" / "007_stray_html_after_header.html").read_bytes()
    links = GenericPage(url, edited.decode("utf-8")).links()
    assert links == GenericPage(url, body.decode("utf-8")).links()
    # links of the page after the stray </html>: footer links, related articles (libxml2 lost them)
    assert "http://www.wanzai.gov.cn/wzxrmzf/wzdt/wzdt.shtml" in {link.url for link in links}
    assert len(links) > 10


# 300: past libxml2's 256 levels; 1000: issue 15.7's "try 1000"; 3000: past huge_tree's 2048
@pytest.mark.parametrize("depth", [300, 1000, 3000])
def test_deep_nesting_keeps_its_text(depth: int) -> None:
    body, url = corpus("055")
    text = body.decode("utf-8")
    start = re.search(r"<body[^>]*>", text).end()
    end = text.rindex("</body>")
    deep = text[:start] + "<div>" * depth + text[start:end] + "</div>" * depth + text[end:]
    want = extract(body, url)
    doc = extract(deep.encode("utf-8"), url)
    assert len(want.text) > 200
    assert doc.text == want.text
    assert doc.title == want.title


def test_unclosed_table_cells_stay_in_their_row() -> None:
    root = parse("<body><table><tr><td>名称<td>数量<tr><td>甲<td>1</table><p>表后</p></body>")
    rows = root.findall(".//tr")
    assert [[td.text for td in tr] for tr in rows] == [["名称", "数量"], ["甲", "1"]]
    assert root.find(".//table").getnext().text == "表后"
