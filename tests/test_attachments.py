"""Attachment text (crawler.extract.attachments) and ``govcrawl extract FILE`` on real files."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.extract.attachments import attachment_text, extract_bytes, sniff

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "attachments"

#: The texts the corpus README says must come out of each file.
MUST = {
    "a01.pdf": ("pdf", ["2021 年深圳市社会性别统计报告", "常住人口性别比"]),
    "a02.docx": ("docx", ["部门名称", "最低学历"]),
    "a03.xlsx": ("xlsx", ["2018年宜春市市直机关遴选公务员（参照管理单位工作人员）职位表",
                          "最低学历"]),
    "a05.xls": ("xls", ["万载县主要农副产品及居民生活必需品价格行情", "晚籼米"]),
    "a06.doc": ("doc", ["专业科目考试大纲", "一、考试方式"]),
}


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize("name", sorted(MUST))
def test_every_corpus_attachment_gives_its_named_texts(name: str):
    fmt, texts = MUST[name]
    result = attachment_text(read(name))
    assert result is not None and result.format == fmt
    for text in texts:
        assert text in result.text
    assert result.chars == len(result.text) > 500
    assert not result.needs_ocr


@pytest.mark.parametrize("name", sorted(MUST))
def test_type_comes_from_the_bytes_not_the_name(name: str, tmp_path: Path, capsys):
    renamed = tmp_path / "download.html"  # a misleading extension
    renamed.write_bytes(read(name))
    assert main(["extract", str(renamed), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == MUST[name][0] and data["is_document"] is True
    for text in MUST[name][1]:
        assert text in data["text"]
    assert {"format", "pages", "needs_ocr"} <= set(data)


def test_pdf_metadata_pages_and_text_layer():
    result = attachment_text(read("a01.pdf"))
    assert result is not None
    assert result.pages == 13 and result.needs_ocr is False
    assert result.meta() == {"format": "pdf", "pages": 13, "sheets": None, "needs_ocr": False,
                             "reader": "pypdfium2", "chars": result.chars}


def test_docx_table_rows_without_merged_cells_repeated():
    text = attachment_text(read("a02.docx")).text
    lines = text.splitlines()
    assert lines[0] == "附件1："  # one cell spanning the row: once, not eleven times
    assert text.count("附件1：") == 1
    header = next(line for line in lines if line.startswith("序号"))
    cells = header.split("\t")
    assert cells[:3] == ["序号", "部门名称", "职位名称"]  # 职位\n名称: a wrap inside a cell
    assert cells.count("资格条件") == 1  # spans three columns, written once
    assert any("\t专业\t最低学历\t其他条件" in line for line in lines)


def test_spreadsheet_rows_with_numbers_as_shown():
    xls = attachment_text(read("a05.xls"))
    assert xls.sheets == 3
    assert "一、粮食类\t晚籼米\t标一\t元/500克\t2.68" in xls.text.splitlines()
    xlsx = attachment_text(read("a03.xlsx"))
    assert xlsx.sheets == 2
    row = next(line for line in xlsx.text.splitlines() if line.startswith("1\t"))
    assert row.split("\t")[:3] == ["1", "中共宜春市委宣传部", "科员"]  # not 1.0, no wrap
    assert "\t2\t" in row  # 招考人数 2, not 2.0


def test_fast_saved_wps_doc_reads_in_order():
    text = attachment_text(read("a06.doc")).text
    assert "This was fast-saved" not in text  # catdoc's partial read is not used
    order = [text.index(s) for s in ("专业科目考试大纲", "一、考试方式", "二、作答要求",
                                      "三、考试内容")]
    assert order == sorted(order)


def zip_of(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, read(name))
    return buf.getvalue()


@pytest.mark.parametrize("data, kind", [
    (lambda: read("git-logo.png"), "PNG image"),
    (lambda: read("python.gif"), "GIF image"),
    (lambda: read("python.jpg"), "JPEG image"),
    (lambda: zip_of("a01.pdf"), "zip archive"),
    (lambda: Path(sys.executable).resolve().read_bytes(), "ELF executable"),
], ids=["png", "gif", "jpeg", "zip", "elf"])
def test_images_archives_executables_are_not_documents(data, kind, tmp_path: Path, capsys):
    body = data()
    assert sniff(body).binary and sniff(body).format == kind
    assert attachment_text(body) is None
    doc = extract_bytes(body, "https://www.example.gov.cn/a.html")
    assert doc.is_document is False and doc.text == "" and doc.format == kind
    path = tmp_path / "page.html"
    path.write_bytes(body)
    assert main(["extract", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["is_document"] is False
    assert captured.err.count("\n") == 1 and "not a document" in captured.err
    assert main(["extract", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and f"not a document ({kind})" in captured.err


def test_damaged_document_is_one_line_exit_1(tmp_path: Path, capsys):
    path = tmp_path / "cut.pdf"
    path.write_bytes(read("a01.pdf")[:3000])  # a download cut short
    code = main(["extract", str(path)])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    if code == 1:
        assert err.count("\n") == 1


def test_html_page_still_goes_to_the_page_extractor():
    page = (Path(__file__).resolve().parent / "corpus" / "pages" / "049.html").read_bytes()
    assert sniff(page) is None
    doc = extract_bytes(page, "https://www.atxlyj.cn/xxgk/ndbg/202101/t20210108_922970.html")
    assert doc.format == "html" and doc.title and doc.is_document


@pytest.mark.parametrize("name, kind", [("git-logo.png", "PNG image"), ("python.gif", "GIF image"),
                                        ("python.jpg", "JPEG image")])
def test_crawl_reports_a_binary_page_as_not_a_document(name: str, kind: str):
    """An article URL that serves an image: the crawl's extraction drops it as not a document,
    counted apart (``govcrawl/not_document/binary``), never archived as text."""
    import asyncio

    from scrapy.exceptions import DropItem
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from crawler.items import ARTICLE, PageItem, ResponseRecord
    from pipelines.extract import ExtractionPipeline

    crawler = get_crawler()
    crawler.stats = MemoryStatsCollector(crawler)
    pipeline = ExtractionPipeline(crawler)
    url = "https://www.example.gov.cn/art/2024/5/10/art_1_2.html"
    item = PageItem(site="x", kind=ARTICLE, response=ResponseRecord(
        url, 200, [("Content-Type", "text/html")], read(name)))
    with pytest.raises(DropItem, match=f"not a document \\(binary: {kind}\\)"):
        asyncio.run(pipeline.process_item(item))
    assert item.document.text == "" and "binary_not_document" in item.document.findings
    stats = crawler.stats.get_stats()
    assert stats["govcrawl/not_document/binary"] == 1
    assert "govcrawl/not_document/no_content" not in stats


PAGE_049 = Path(__file__).resolve().parent / "corpus" / "pages" / "049.html"


@pytest.mark.parametrize("data", [
    lambda: __import__("zlib").compress(PAGE_049.read_bytes()),  # deflate, no Content-Encoding
    lambda: __import__("random").Random(7).randbytes(20_000),  # encrypted or random bytes
    lambda: next(Path("/usr/share/fonts").rglob("*.ttf")).read_bytes()
    if Path("/usr/share/fonts").is_dir() and any(Path("/usr/share/fonts").rglob("*.ttf"))
    else b"\x00\x01\x00\x00\x00\x10\x01\x00\x00\x04" * 400,  # a TrueType font (no magic)
], ids=["zlib-stream", "random", "truetype"])
def test_binary_without_a_known_magic_is_not_a_document(data, tmp_path: Path, capsys):
    """Bytes no magic names were taken for an HTML page: garbage came out as text with
    is_document true. Their control bytes tell them from text."""
    body = data()
    assert sniff(body).binary
    doc = extract_bytes(body, "https://www.example.gov.cn/a.html")
    assert doc.is_document is False and doc.text == ""
    path = tmp_path / "page.html"
    path.write_bytes(body)
    assert main(["extract", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "not a document (binary data of no known format)" in captured.err


def test_utf16_page_without_a_bom_is_still_a_page():
    text = PAGE_049.read_text(encoding="utf-8")
    for encoding in ("utf-16-le", "utf-16-be"):
        assert sniff(text.encode(encoding)) is None
