"""Attachments wherever the page puts them (crawler/extract/filelinks.py and its table
crawler/tables/attachment_links.yaml): listed by extraction with their visible names, and
fetched and archived by a crawl.

No page of the corpus carries these forms, so the fixtures are real corpus pages minimally
edited: corpus 055 (道真县人社局, a restored TRS county bureau site: an article of the kind issue 14
describes) with attachment blocks added at the end of its body, and corpus 049 (安图县林业局 TRS
"详请见附件" notice) with its document.write line re-quoted. The insertfile block follows UEditor's
insertfile output (fex-team/ueditor _src/plugins/insertfile.js: icon <img> + <a title=…>) with the
URL moved from href to _href behind href="javascript:;", as the issue found them. Corpus 003 (浙江省
发改委, 大汉 Hanweb) gets an attachment line linking Hanweb's download endpoint
(/module/download/downfile.jsp?classid=0&filename=<name>.xls, the form Hanweb sites publish).
Corpus 058 (安图县林业局 年度报告 list, TRS) gets one list entry whose PDF opens by onclick.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from crawler import attachments
from crawler.archive import open_archive
from crawler.extract import extract, find_attachments
from crawler.extract.filelinks import find_file_links, written_html
from crawler.pages import page_for
from tests.conftest import CORPUS, REPO, local_server, run_govcrawl, static_site

ARTICLE_055 = "/gzdt/xydt/201705/t20170524_20933426.html"
ARTICLE_049 = "/gzdt/xydt/202101/t20210108_922970.html"
URL_055 = "http://www.gzdzhrss.com" + ARTICLE_055
URL_049 = "http://www.gzdzhrss.com" + ARTICLE_049
ARTICLE_003 = "/art/2016/11/22/art_1621004_30332664.html"
URL_003 = "http://fgw.zj.gov.cn" + ARTICLE_003
DOWNFILE = "/module/download/downfile.jsp?classid=0&filename=1611221620474812345.xls"

INSERTFILE = (
    '<p style="line-height: 16px;"><img style="vertical-align: middle; margin-right: 2px;" '
    'src="/ueditor/dialogs/attachment/fileTypeImages/icon_pdf.gif"/><a style="font-size:12px; '
    'color:#0066cc;" href="javascript:;" _href="./P020170524534881411234.pdf" '
    'title="道真县2017年就业见习岗位表.pdf">道真县2017年就业见习岗位表.pdf</a></p>')
DATA_URL = ('<p>附件2：<a href="javascript:void(0)" '
            'data-url="/gzdt/xydt/201705/P020170524534881422345.docx">活动报名表</a></p>')
ONCLICK = ('<p>附件3：<a href="javascript:;" onclick="download(\'./P020170524534881433456.xlsx\');'
           'return false;">2017年三八趣味活动获奖名单</a></p>')
WINDOW_OPEN = ('<p><span class="fj" onclick="window.open(\'/gzdt/xydt/201705/'
               'P020170524534881444567.doc\')">附件4：活动方案</span></p>')
#: not attachments: an image type the policy leaves out, a share button, a page opened by script
NOT_FILES = ('<p><a href="javascript:;" data-url="./W020170524534881365599.jpg">图片</a>'
             '<a href="javascript:;" title="分享到QQ空间" '
             'onclick="jiathis_sendto(\'qzone\');">QQ空间</a>'
             '<a href="javascript:void(0);" '
             'onclick="window.open(\'/gzdt/xydt/index.html\')">栏目</a></p>')
BLOCKS = INSERTFILE + DATA_URL + ONCLICK + WINDOW_OPEN + NOT_FILES

#: corpus 055 with the blocks added at the end of its article body (<font id="Zoom">)
PAGE_055 = (CORPUS / "pages" / "055.html").read_bytes().replace(
    b"<p><br></p><p><br></p>\n\t\t\t\t\t</font>",
    b"<p><br></p><p><br></p>" + BLOCKS.encode("utf-8") + b"\n\t\t\t\t\t</font>", 1)
#: corpus 049 with its document.write argument in double quotes, inner quotes escaped (\")
_WRITE_049 = ('document.write(\'<p class="right_text">可下载附件：'
              '<a href="./P020210108586100144513.pdf">2020.1.8.pdf<BR></a></p>\');')
PAGE_049 = (CORPUS / "pages" / "049.html").read_bytes().replace(
    _WRITE_049.encode(),
    _WRITE_049.replace("'", "\x00").replace('"', '\\"').replace("\x00", '"').encode())
#: corpus 003 with an attachment line at the end of its body (before <meta name="ContentEnd">)
PAGE_003 = (CORPUS / "pages" / "003.html").read_bytes().replace(
    b'<p>&nbsp;</p><meta name="ContentEnd">',
    b'<p>&nbsp;</p><p>\xe9\x99\x84\xe4\xbb\xb6\xef\xbc\x9a<a href="'
    + DOWNFILE.replace("&", "&amp;").encode() + '">1-10月固定资产投资情况表</a></p>'.encode()
    + b'<meta name="ContentEnd">', 1)
LIST_058 = "http://www.atxlyj.cn/xxgk/ndbg/index.html"
ONCLICK_ENTRY = ('<li><span> 2021-03-01 </span><a href="javascript:;" '
                 'onclick="window.open(\'./202103/P020210301586100155555.pdf\')">'
                 '2021年安图县林业局部门预算</a></li>')
#: corpus 058 with one more list entry, before its first one: a PDF opened by onclick
PAGE_058 = (CORPUS / "pages" / "058.html").read_bytes().replace(
    b'<li><span> 2021-01-08 </span>', ONCLICK_ENTRY.encode() + b'<li><span> 2021-01-08 </span>', 1)

EXPECTED_055 = [
    {"url": "http://www.gzdzhrss.com/gzdt/xydt/201705/P020170524534881411234.pdf",
     "name": "道真县2017年就业见习岗位表.pdf"},
    {"url": "http://www.gzdzhrss.com/gzdt/xydt/201705/P020170524534881422345.docx",
     "name": "活动报名表"},
    {"url": "http://www.gzdzhrss.com/gzdt/xydt/201705/P020170524534881433456.xlsx",
     "name": "2017年三八趣味活动获奖名单"},
    {"url": "http://www.gzdzhrss.com/gzdt/xydt/201705/P020170524534881444567.doc",
     "name": "附件4：活动方案"},
]


def test_fixtures_are_edited_corpus_pages() -> None:
    assert BLOCKS.encode("utf-8") in PAGE_055
    assert b'href=\\"./P020210108586100144513.pdf\\"' in PAGE_049
    assert b"downfile.jsp?classid=0&amp;filename=" in PAGE_003
    assert ONCLICK_ENTRY.encode() in PAGE_058


def test_list_page_links_an_attachment_opened_by_script() -> None:
    """A list page's links include an attachment behind a javascript: link (the spider requests
    it as an attachment: its URL passes the policy)."""
    for cms in ("auto", "trs", "generic"):
        links = page_for(LIST_058, PAGE_058.decode("utf-8"), cms).links()
        pdf = "http://www.atxlyj.cn/xxgk/ndbg/202103/P020210301586100155555.pdf"
        assert (pdf, "2021年安图县林业局部门预算") in [(link.url, link.text) for link in links]
        assert attachments.is_attachment(pdf)
        # the plain anchors are still there, in page order, before it
        urls = [link.url for link in links]
        assert urls.index("http://www.atxlyj.cn/xxgk/ndbg/202101/t20210108_922970.html") < \
            urls.index(pdf)
    plain = page_for(LIST_058, (CORPUS / "pages" / "058.html").read_text("utf-8"), "auto")
    assert not [link for link in plain.links() if attachments.is_attachment(link.url)]


def test_extract_lists_insertfile_data_attribute_and_script_handler_attachments() -> None:
    doc = extract(PAGE_055, URL_055)
    assert doc.attachments == EXPECTED_055
    assert find_attachments(PAGE_055.decode("utf-8"), URL_055) == EXPECTED_055
    # the unedited page has none of them (and lists nothing: its images are not attachments)
    assert extract((CORPUS / "pages" / "055.html").read_bytes(), URL_055).attachments == []


def test_document_write_with_escaped_quotes() -> None:
    expected = [{"url": "http://www.gzdzhrss.com/gzdt/xydt/202101/P020210108586100144513.pdf",
                 "name": "2020.1.8.pdf"}]
    assert extract(PAGE_049, URL_049).attachments == expected
    assert find_attachments(PAGE_049.decode("utf-8"), URL_049) == expected


def test_download_endpoint_naming_the_file_in_its_query() -> None:
    """Hanweb's downfile.jsp?filename=x.xls is an attachment (listed and, by the same policy,
    requested by the spider); the type is in the query, not the path."""
    assert extract(PAGE_003, URL_003).attachments == [
        {"url": "http://fgw.zj.gov.cn" + DOWNFILE, "name": "1-10月固定资产投资情况表"}]
    assert attachments.is_attachment("http://fgw.zj.gov.cn" + DOWNFILE)
    assert not attachments.is_attachment("http://fgw.zj.gov.cn/jrobot/search.do?q=x&name=abc")
    # a viewer page is not the file; the file it is given is
    viewer = "http://a.gov.cn/pdfjs/web/viewer.html?file=/upload/2023/f.pdf"
    assert not attachments.is_attachment(viewer)
    assert attachments.attachment_url(viewer) == "http://a.gov.cn/upload/2023/f.pdf"
    # a viewer given a malformed URL (broken IPv6 host) links no file, and raises nothing
    broken = "http://a.gov.cn/pdfjs/web/viewer.html?file=http://[2001:db8::1/f.pdf"
    assert attachments.attachment_url(broken) is None
    assert not attachments.is_attachment("http://[2001:db8::1/downfile.jsp?filename=x.xls")


@pytest.mark.parametrize("html, script, expected", [
    # javascript:void(0) with the URL in TRS's oldsrc
    ('<a href="javascript:void(0)" oldsrc="/protect/P0201708/P020170811.pdf">年度报表</a>', "",
     [("http://a.gov.cn/protect/P0201708/P020170811.pdf", "年度报表")]),
    # no href at all, data-href; the name from the title when the link has no text
    ('<a data-href="/u/2023/f.wps" title="预算公开表"><img src="i.gif"></a>', "",
     [("http://a.gov.cn/u/2023/f.wps", "预算公开表")]),
    # a title holding a path counts; a title holding only a name does not
    ('<a href="#" title="/u/f1.ofd">办法</a><a href="#" title="细则.pdf">细则.pdf</a>', "",
     [("http://a.gov.cn/u/f1.ofd", "办法")]),
    # a javascript: href calling a download function
    ("<a href=\"javascript:downloadFile('/u/f2.et')\">统计表</a>", "",
     [("http://a.gov.cn/u/f2.et", "统计表")]),
    # location.href on a button
    ("<button onclick=\"location.href='/u/f3.zip'\">下载</button>", "",
     [("http://a.gov.cn/u/f3.zip", "下载")]),
    # a real href that is not a file: its _href is not read
    ('<a href="/art/1.html" _href="/u/f4.pdf">正文</a>', "", []),
    # document.write with an unquoted href; writeln with a \u-escaped name
    ("", "document.write('<a href=/u/f5.pdf>附件</a>')", [("http://a.gov.cn/u/f5.pdf", "附件")]),
    ("", 'document.writeln("<a href=\'/u/f6.doc\'>\\u9644\\u4ef6</a>")',
     [("http://a.gov.cn/u/f6.doc", "附件")]),
    # a written link behind javascript:; with data-url (the same rules inside written HTML)
    ("", "var fj = '<a href=\"javascript:;\" data-url=\"/u/f7.xls\">表</a>';"
         "document.getElementById('fj').innerHTML = fj;", [("http://a.gov.cn/u/f7.xls", "表")]),
    # a viewer link: the file it opens; a download endpoint without text: named by its parameter
    ('<a href="/pdfjs/web/viewer.html?file=/upload/f9.pdf">预览</a>'
     '<a href="/module/download/downfile.jsp?classid=0&amp;filename=f10.docx"></a>', "",
     [("http://a.gov.cn/upload/f9.pdf", "预览"),
      ("http://a.gov.cn/module/download/downfile.jsp?classid=0&filename=f10.docx", "f10.docx")]),
    # a PDF shown in the page, an iframe of a viewer page (its file parameter URL-encoded)
    ('<p>正文</p><embed src="/u/f11.pdf" type="application/pdf" title="实施方案">'
     '<iframe src="/pdfjs/web/viewer.html?file=%2Fu%2Ff12.pdf"></iframe>'
     '<iframe src="/module/video/player.html"></iframe>', "",
     [("http://a.gov.cn/u/f11.pdf", "实施方案"), ("http://a.gov.cn/u/f12.pdf", "f12.pdf")]),
    # a script that writes no link, and a policy-excluded type
    ("", "document.write('<span>' + today + '</span>')", []),
    ('<a href="javascript:;" data-src="/u/f8.mp4">视频</a>', "", []),
])
def test_forms(html: str, script: str, expected: list[tuple[str, str]]) -> None:
    from lxml.html import fragment_fromstring

    scope = fragment_fromstring(html or "<p></p>", create_parent="div")
    found = find_file_links(scope, [script] if script else [], "http://a.gov.cn/x/t1.html")
    assert [(a["url"], a["name"]) for a in found] == expected


def test_written_html_joins_and_unescapes_literals() -> None:
    code = 'var a="<a href=\\"/f.pdf\\">";document.write(a+"\\u9644</a>");'
    assert written_html(code) == '<a href="/f.pdf">附</a>'
    assert written_html("document.write('<p>no link</p>')") is None


#: real attachments (tests/fixtures/attachments, the shared corpus's files)
ATTACHMENTS = REPO / "tests" / "fixtures" / "attachments"
A01 = (ATTACHMENTS / "a01.pdf").read_bytes()
A02 = (ATTACHMENTS / "a02.docx").read_bytes()
A03 = (ATTACHMENTS / "a03.xlsx").read_bytes()
A05 = (ATTACHMENTS / "a05.xls").read_bytes()
A06 = (ATTACHMENTS / "a06.doc").read_bytes()
LIST = ('<html><head><meta charset="utf-8"><title>行业动态</title></head><body><ul>'
        '<li><a href="./201705/t20170524_20933426.html">县人社局开展庆三八妇女节趣味活动</a></li>'
        '<li><a href="./202101/t20210108_922970.html">政府网站工作年度报表</a></li>'
        '<li><a href="/art/2016/11/22/art_1621004_30332664.html">1-10月全县固定资产投资</a></li>'
        '<li><a href="javascript:void(0)" onclick="window.open(\'./P020170601111111111111.pdf\')">'
        '2017年部门预算</a></li>'
        '</ul></body></html>').encode()
LIST_ATTACHMENT = "/gzdt/xydt/P020170601111111111111.pdf"
FILES = {
    "/gzdt/xydt/index.html": (LIST, "text/html; charset=utf-8"),
    ARTICLE_055: (PAGE_055, "text/html; charset=utf-8"),
    ARTICLE_049: (PAGE_049, "text/html; charset=utf-8"),
    ARTICLE_003: (PAGE_003, "text/html; charset=utf-8"),
    DOWNFILE: (A05, "application/octet-stream"),
    LIST_ATTACHMENT: (A01, "application/pdf"),
    "/gzdt/xydt/201705/P020170524534881411234.pdf": (A01, "application/pdf"),
    "/gzdt/xydt/201705/P020170524534881422345.docx": (A02, "application/octet-stream"),
    "/gzdt/xydt/201705/P020170524534881433456.xlsx": (A03, "application/octet-stream"),
    "/gzdt/xydt/201705/P020170524534881444567.doc": (A06, "application/msword"),
    "/gzdt/xydt/202101/P020210108586100144513.pdf": (A01, "application/pdf"),
}


def test_crawl_fetches_and_archives_them(tmp_path: Path) -> None:
    with local_server(static_site(FILES)) as base:
        profile = {"name": "fjsite", "title": "本地测试站",
                   "start_urls": [f"{base}/gzdt/xydt/index.html"],
                   "allowed_domains": ["127.0.0.1"],
                   "article_patterns": [r"/\d{6}/t\d{8}_\d+\.html$",
                                        r"/art/\d{4}/\d+/\d+/art_\d+_\d+\.html$"]}
        (tmp_path / "fjsite.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
        proc = run_govcrawl("crawl", "fjsite", "--archive", str(tmp_path / "archive"),
                            "--state-dir", str(tmp_path / "state"),
                            "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "ROBOTSTXT_OBEY=False",
                            env={"GOVCRAWL_PROFILES": str(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    archive = tmp_path / "archive"
    metas = {}
    for path in archive.glob("docs/fjsite/*/v1/meta.json"):
        meta = json.loads(path.read_text("utf-8"))
        metas[meta["url"].removeprefix(base)] = meta
    assert set(metas) == {ARTICLE_055, ARTICLE_049, ARTICLE_003}
    # the list page's script-opened PDF is archived as an attachment of the site
    stored = {(e.get("kind"), e.get("url")) for e in open_archive(str(archive)).entries()}
    assert ("attachment", base + LIST_ATTACHMENT) in stored
    want = {ARTICLE_055: [(e["url"].removeprefix("http://www.gzdzhrss.com"), e["name"], body)
                          for e, body in zip(EXPECTED_055, (A01, A02, A03, A06), strict=True)],
            ARTICLE_049: [("/gzdt/xydt/202101/P020210108586100144513.pdf", "2020.1.8.pdf", A01)],
            ARTICLE_003: [(DOWNFILE, "1-10月固定资产投资情况表", A05)]}
    for article, files in want.items():
        listed = metas[article]["attachments"]
        assert [(a["url"], a["name"]) for a in listed] == [(base + p, n) for p, n, _ in files]
        for entry, (_, _, body) in zip(listed, files, strict=True):
            sha = hashlib.sha256(body).hexdigest()
            assert entry["sha256"] == sha
            assert entry["key"] == f"attachments/{sha[:2]}/{sha}/body"
            assert (archive / entry["key"]).read_bytes() == body


def test_a_malformed_attachment_link_costs_only_itself() -> None:
    """055 with the blocks, plus two file links whose URLs cannot be parsed (a broken IPv6 host, a
    non-numeric port) before them: extraction lists the four good ones (it raised ValueError)."""
    broken = ('<p><a href="http://[2001:db8::1/P1.pdf">坏链接1</a>'
              '<a href="http://www.gzdzhrss.com:8o/P2.pdf">坏链接2</a></p>')
    page = PAGE_055.replace(INSERTFILE.encode("utf-8"), (broken + INSERTFILE).encode("utf-8"), 1)
    assert broken.encode("utf-8") in page
    assert extract(page, URL_055).attachments == EXPECTED_055
    assert find_attachments(page.decode("utf-8"), URL_055) == EXPECTED_055
