"""Never chrome as a body (issue 14): a page with no article text has an empty body (plus its
attachments) and the finding ``empty_body`` (``attachment_only`` when it has attachments), never
its template's nav, share or footer lines.

Pages: corpus 054, 055 and 060, real pages of a restored TRS county bureau site (道真县人社局,
the kind of site issue 14 crawled), each minimally edited: the content of its article element
(``<font id="Zoom">``) replaced by nothing (a notice whose text the CMS lost) or by one UEditor
insertfile attachment block (a notice whose content is its attachment).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.extract import classify_line, extract
from crawler.extract.lines import chrome_run

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = {
    rec["id"]: rec
    for rec in map(json.loads, (CORPUS / "manifest.jsonl").read_text("utf-8").splitlines())
}
INSERTFILE = (
    '<p style="line-height: 16px;"><img style="vertical-align: middle; margin-right: 2px;" '
    'src="/ueditor/dialogs/attachment/fileTypeImages/icon_pdf.gif"/><a style="font-size:12px; '
    'color:#0066cc;" href="javascript:;" _href="./P020170524534881411234.pdf" '
    'title="道真县2017年就业见习岗位表.pdf">道真县2017年就业见习岗位表.pdf</a></p>')
#: The template lines issue 14 found as bodies (and their parts).
CHROME = ("发布时间", "字体", "QQ空间", "人人网", "网站纠错", "RSS订阅", "联系方式", "网站地图")
PAGES = ["054", "055", "060"]


def edited(page_id: str, inner: str) -> tuple[bytes, str]:
    """Corpus page ``page_id`` with its article element's content replaced by ``inner``."""
    raw = (CORPUS / "pages" / f"{page_id}.html").read_text("utf-8")
    page, n = re.subn(r'(<font id="Zoom">).*?(</font>)', lambda m: m.group(1) + inner + m.group(2),
                      raw, count=1, flags=re.S)
    assert n == 1
    return page.encode("utf-8"), MANIFEST[page_id]["url"]


@pytest.mark.parametrize("page_id", PAGES)
def test_page_without_article_text_has_an_empty_body(page_id: str) -> None:
    body, url = edited(page_id, "<p><br></p>")
    doc = extract(body, url)
    assert doc.text == ""
    assert "empty_body" in doc.findings and "attachment_only" not in doc.findings
    assert doc.is_document is False
    assert doc.title  # the page's metadata is still read
    original = extract((CORPUS / "pages" / f"{page_id}.html").read_bytes(), url)
    assert original.text and "empty_body" not in original.findings


@pytest.mark.parametrize("page_id", PAGES)
def test_attachment_only_notice_has_its_attachment_and_no_chrome(page_id: str) -> None:
    body, url = edited(page_id, INSERTFILE)
    doc = extract(body, url)
    assert doc.text == ""
    assert not any(chrome in doc.text for chrome in CHROME)
    assert doc.attachments == [{"url": url.rsplit("/", 1)[0] + "/P020170524534881411234.pdf",
                                "name": "道真县2017年就业见习岗位表.pdf"}]
    assert {"empty_body", "attachment_only"} <= set(doc.findings)
    assert doc.is_document is True  # its content is the attachment


@pytest.mark.parametrize("line, label", [
    ("发布时间： 字体： 小 中 大", "controls"),
    ("发布时间： 字体：", "controls"),
    ("QQ空间 人人网", "controls"),
    ("网站纠错", "footer"),
    ("RSS订阅| 联系方式| 网站地图", "footer"),
    ("发布时间：", "meta_line"),
    # real text of a notice: stays
    ("联系方式", None),
    ("联系方式：0851-25221234", None),
    ("关于我们县2017年创业贷款贴息工作的通知", None),
    ("我局网站地图栏目已更新，欢迎访问。", None),
])
def test_chrome_lines_are_boilerplate_in_the_body_zone(line: str, label: str | None) -> None:
    assert classify_line(line, "body") == label


def test_fragment_runs() -> None:
    # a template's info bar split over lines, with the stray value of 上一篇：无
    assert chrome_run(["发布时间：", "字体：", "小", "中", "大", "QQ空间", "人人网", "无"])
    assert chrome_run(["小", "中", "大", "点击量：次", "无", "无"]) is True
    # real short lines: a list of names, a heading next to a print button, sizes in a table
    assert not chrome_run(["张三", "李四", "王五"])
    assert not chrome_run(["打印", "一、贷款任务"])
    assert not chrome_run(["小", "中", "大"])


def test_extract_command_says_empty_body(tmp_path: Path, capsys) -> None:
    body, url = edited("055", "<p><br></p>")
    path = tmp_path / "page.html"
    path.write_bytes(body)
    assert main(["extract", str(path), "--url", url, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["text"] == "" and "empty_body" in data["findings"]
    assert "not a document (empty_body)" in captured.err


def test_crawl_keeps_an_attachment_only_notice_and_drops_an_empty_page() -> None:
    from scrapy.exceptions import DropItem
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from crawler.items import ARTICLE, PageItem, ResponseRecord
    from pipelines.extract import ExtractionPipeline

    crawler = get_crawler()
    crawler.stats = MemoryStatsCollector(crawler)
    pipeline = ExtractionPipeline(crawler)
    headers = [("Content-Type", "text/html; charset=utf-8")]
    body, url = edited("055", INSERTFILE)
    item = PageItem(site="gzdzhrss", kind=ARTICLE, response=ResponseRecord(url, 200, headers, body))
    kept = asyncio.run(pipeline.process_item(item))
    assert kept.document.text == "" and "attachment_only" in kept.document.findings
    body, url = edited("055", "<p><br></p>")
    item = PageItem(site="gzdzhrss", kind=ARTICLE, response=ResponseRecord(url, 200, headers, body))
    with pytest.raises(DropItem, match="no_content"):
        asyncio.run(pipeline.process_item(item))
