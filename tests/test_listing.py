"""List-page discovery and pagination (crawler.listing) on saved real pages."""

from __future__ import annotations

import json

import pytest

from crawler import listing
from crawler.attachments import is_attachment
from tests.conftest import CORPUS, REPO, load_jsonl

MANIFEST = {row["id"]: row for row in load_jsonl(CORPUS / "manifest.jsonl")}


def page(pid: str) -> tuple[str, str]:
    return (CORPUS / "pages" / f"{pid}.html").read_text(encoding="utf-8"), MANIFEST[pid]["url"]


def article_links(pid: str, pattern: str) -> list[str]:
    import re

    html, url = page(pid)
    return [link.url for link in listing.extract_links(html, url) if re.search(pattern, link.url)]


# --- real list pages ------------------------------------------------------------------------


def test_atxlyj_bmwj_list_custom_pager():
    """051: 13 documents and a custom JS Pager({size:3, current:0, prefix:'index'})."""
    html, url = page("051")
    docs = article_links("051", r"/\d{6}/t\d{8}_\d+\.html$")
    assert len(docs) == 13
    assert docs[0] == "https://www.atxlyj.cn/xxgk/bmwj/202001/t20200102_724010.html"
    assert listing.page_schemes(html) == [listing.PageScheme(3, 0, "index", "html")]
    assert listing.list_next_pages(html, url) == ["https://www.atxlyj.cn/xxgk/bmwj/index_1.html"]
    # the pager's own templates ("'+cfg.prefix+'_'...") are not links
    assert not any("cfg." in link.url or "'" in link.url
                   for link in listing.extract_links(html, url))


def test_atxlyj_ndbg_list_single_page():
    """058: one page (size:1) listing the two saved annual reports among nine documents."""
    html, url = page("058")
    docs = article_links("058", r"/\d{6}/t\d{8}_\d+\.html$")
    assert len(docs) == 9
    assert MANIFEST["049"]["url"] in docs and MANIFEST["061"]["url"] in docs
    assert listing.list_next_pages(html, url) == []


@pytest.mark.parametrize("pid,count,saved", [("057", 12, "054"), ("053", 4, "060")])
def test_gzdzhrss_trs_lists(pid, count, saved):
    """053/057: TRS createPageHTML(1, 0, "index", "html") lists: all documents, no next page."""
    html, url = page(pid)
    docs = article_links(pid, r"/\d{6}/t\d{8}_\d+\.html$")
    assert len(docs) == count
    assert MANIFEST[saved]["url"] in docs
    assert listing.page_schemes(html) == [listing.PageScheme(1, 0, "index", "html")]
    assert listing.list_next_pages(html, url) == []


def test_trs_next_page_from_a_later_page():
    html, _ = page("053")
    later = html.replace('createPageHTML(1, 0, "index", "html")',
                         'createPageHTML(5, 2, "index", "html")')
    url = "https://www.gzdzhrss.com/bmgk/jcdd/zcfg_62443/index_2.html"
    assert listing.list_next_pages(later, url) == [
        "https://www.gzdzhrss.com/bmgk/jcdd/zcfg_62443/index_3.html"]
    last = html.replace('createPageHTML(1, 0, "index", "html")',
                        'createPageHTML(5, 4, "index", "html")')
    assert listing.list_next_pages(last, url.replace("_2", "_4")) == []


def test_trs_page_count_in_a_variable():
    html = ('<script>var countPage = 3; var currentPage = 0;'
            'createPageHTML(countPage, currentPage, "index", "shtml");</script>')
    assert listing.page_schemes(html) == [listing.PageScheme(3, 0, "index", "shtml")]
    assert listing.list_next_pages(html, "http://a.gov.cn/x/index.shtml") == [
        "http://a.gov.cn/x/index_1.shtml"]


# --- articles: attachments and more pages ---------------------------------------------------


def test_attachment_written_by_document_write():
    """049: the PDF link exists only inside an inline document.write() string."""
    html, url = page("049")
    atts = [link for link in listing.extract_links(html, url) if is_attachment(link.url)]
    assert atts == [listing.Link(
        "https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108586100144513.pdf", "2020.1.8.pdf")]


def test_single_page_trs_article_has_no_more_pages():
    """004 calls createPageHTML(1, 0, "t20190918_693227", "shtml"): one page."""
    html, url = page("004")
    assert listing.article_pages(html, url) == []
    # a string cut by a variable ("t2019..._" + n + ".shtml") is not taken for a link
    assert not any(link.url.endswith("_") for link in listing.extract_links(html, url))


def test_multi_page_article_query_pager():
    """047: pager ?page=2..4 inside the article body."""
    html, url = page("047")
    assert listing.article_pages(html, url) == [f"{url}?page={n}" for n in (2, 3, 4)]


def test_multi_page_trs_article():
    html = '<script>createPageHTML(3, 0, "t20151009_67430", "html")</script>'
    url = "http://www.a.gov.cn/zwgk/201510/t20151009_67430.html"
    assert listing.article_pages(html, url) == [
        "http://www.a.gov.cn/zwgk/201510/t20151009_67430_1.html",
        "http://www.a.gov.cn/zwgk/201510/t20151009_67430_2.html"]


def test_trs_document_ids_are_not_page_numbers():
    """Sibling articles t2017..._21164064.html are other documents, not pages of this one."""
    html, url = page("057")
    article = "https://www.gzdzhrss.com/zwgk/bmwj/201707/t20170702_21164061.html"
    links = [listing.Link(u) for u in article_links("057", r"t\d{8}_\d+\.html$")]
    assert listing.article_pages(html, article, links) == []


# --- Hanweb / JPaaS -------------------------------------------------------------------------

HANWEB_PAGE = """<div id="4045498"><script type="text/xml"><datastore>
<nextgroup><![CDATA[<a href="/module/web/jpage/dataproxy.jsp?page=1&webid=1&path=/&columnid=1229116967&unitid=4045498&webname=宁波市人民政府&permissiontype=0"></a>]]></nextgroup>
<recordset>
<record><![CDATA[<li><a href="/art/2023/3/31/art_1229116967_59432101.html" title="A">A</a></li>]]></record>
<record><![CDATA[<li><a href="/art/2023/3/20/art_1229116967_59400000.html" title="B">B</a></li>]]></record>
</recordset></datastore></script></div>
<script>$('#4045498').jpage({perPage: 1, totalRecord: 5, proxyUrl: '/module/web/jpage/dataproxy.jsp'})</script>
"""  # noqa: E501


def test_hanweb_datastore_and_dataproxy_paging():
    url = "http://www.ningbo.gov.cn/col/col1229116967/index.html"
    store = listing.hanweb_datastore(HANWEB_PAGE, url)
    assert store.total == 5 and store.perpage == 1 and len(store.records) == 2
    assert [link.url for link in listing.hanweb_links(store, url)] == [
        "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html",
        "http://www.ningbo.gov.cn/art/2023/3/20/art_1229116967_59400000.html"]
    nxt = listing.hanweb_next_url(store, url, chunk=2)
    assert nxt.startswith("http://www.ningbo.gov.cn/module/web/jpage/dataproxy.jsp?")
    assert "startrecord=3&endrecord=4&perpage=1" in nxt and "columnid=1229116967" in nxt
    # the dataproxy answer for records 3-4, then the last one
    answer = ("<?xml version='1.0' encoding='UTF-8'?><datastore><totalrecord>5</totalrecord>"
              "<recordset><record><![CDATA[<li><a href='/art/2023/3/1/art_1_3.html'>C</a></li>]]>"
              "</record><record><![CDATA[<li><a href='/art/2023/2/1/art_1_4.html'>D</a></li>]]>"
              "</record></recordset></datastore>")
    store2 = listing.hanweb_datastore(answer, nxt)
    assert len(store2.records) == 2 and store2.proxy_url == nxt
    last = listing.hanweb_next_url(store2, nxt, chunk=2)
    assert "startrecord=5&endrecord=6" in last
    final = listing.hanweb_datastore(answer.replace("<record>", "<x>", 1), last)
    assert listing.hanweb_next_url(final, last) is None  # 5 + 1 record > totalrecord


def test_jpaas_unit():
    text = json.dumps({"data": {"html": '<ul><li><a href="/art/2024/1/2/art_1_2.html">x</a></li>'
                                        "</ul>"}})
    assert "art_1_2" in listing.jpaas_html(text)
    url = ("https://www.a.gov.cn/api-gateway/jpaas-publish-server/front/page/build/unit?"
           "webId=1&pageId=2&paramJson=%7B%22pageNo%22%3A1%2C%22pageSize%22%3A%2215%22%7D")
    assert "%22pageNo%22%3A2" in listing.jpaas_next_url(url)


# --- tables ---------------------------------------------------------------------------------


def test_tables_are_data():
    assert (REPO / "spiders" / "data" / "listing.yaml").exists()
    assert "下一页" in listing.tables()["next_labels"]


def test_article_link_hints_never_hide_what_an_article_links():
    """The cheap pre-check may say yes needlessly, never no when an attachment or a next page of
    the article is linked (checked on every real article page with a URL)."""
    from pathlib import Path

    from crawler.listing import article_link_hints, article_pages, extract_links

    corpus = Path(__file__).parent / "corpus"
    skipped = 0
    for line in (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        page = json.loads(line)
        if page["kind"] != "article" or not page["url"]:
            continue
        html = (corpus / "pages" / f"{page['id']}.html").read_bytes().decode("utf-8", "replace")
        links = extract_links(html, page["url"])
        needed = [link for link in links if is_attachment(link.url)]
        needed += article_pages(html, page["url"], links)
        if needed:
            assert article_link_hints(html, page["url"]), page["id"]
        else:
            skipped += not article_link_hints(html, page["url"])
    assert skipped >= 10  # and it does spare most pages the walk


def test_article_link_hint_scans_match_their_plain_regexes():
    """The faster scans behind article_link_hints find what the plain case-insensitive regexes
    find, on every corpus page and on real pages with one parameter/extension edited in."""
    import re

    from crawler.attachments import extension_alternation
    from crawler.listing import _PAGE_PARAMS, _attachment_hint_re, _query_page_hint

    plain_attachment = re.compile(rf"\.(?:{extension_alternation()})(?![A-Za-z0-9])", re.I)
    plain_query = re.compile(rf"[?&;](?:{'|'.join(_PAGE_PARAMS)})=\d", re.I)
    html, _ = page("012")
    edits = ["?PAGE=2", "&pn=3", ";CurPage=1", "xpageno=2", "?page=x", "?pageindex=12",
             "a.PDF", "b.pdfx", "c.Docx\"", ".7z", "d.et ", "e.etc"]
    texts = [(CORPUS / "pages" / f"{pid}.html").read_text(encoding="utf-8", errors="replace")
             for pid in MANIFEST]
    texts += [html.replace("</body>", f"{edit}</body>") for edit in edits] + edits
    for text in texts:
        assert bool(_attachment_hint_re().search(text)) == bool(plain_attachment.search(text))
        assert _query_page_hint(text) == bool(plain_query.search(text))


def test_a_malformed_href_costs_only_itself():
    """051 minimally edited: a link with a broken IPv6 host and one with a non-numeric port are
    put before the first document; they are skipped, the 13 documents and the pager remain
    (urljoin raised ValueError on them and the whole page's links were lost)."""
    html, url = page("051")
    first = '<a href="202001/t20200102_724010.html">'
    assert first in html
    broken = '<a href="http://[2001:db8::1/a.html">x</a><a href="http://www.atxlyj.cn:8o/b.html">y</a>'
    edited = html.replace(first, broken + first, 1)
    links = [link.url for link in listing.extract_links(edited, url)]
    assert links == [link.url for link in listing.extract_links(html, url)]
    assert len(article_links("051", r"/\d{6}/t\d{8}_\d+\.html$")) == 13
    assert listing.list_next_pages(edited, url) == ["https://www.atxlyj.cn/xxgk/bmwj/index_1.html"]
