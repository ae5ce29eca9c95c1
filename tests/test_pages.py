"""Page objects per CMS family (crawler.pages) on saved responses, web-poet style: each case in
``tests/fixtures/pages/cases.yaml`` names a saved page (a corpus page at its manifest URL, or a
cassette's recorded response), the family reading it, and the expected output: the documents
and attachments among ``links()``, ``next_pages()``, ``more_pages()`` and ``attachments()``.

Cases marked ``edit``/``wrap_jpaas`` are real pages minimally edited to show one rule (a last
TRS page carrying a stray "下一页" link; a real list fragment served as a JPaaS ``build/unit``
JSON answer: no JPaaS response was saved)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml

from crawler import listing, pages
from crawler.attachments import is_attachment
from crawler.cassette import load_cassette
from crawler.extract import decode_html
from crawler.profiles import load_profiles
from tests.conftest import CASSETTES, CORPUS, REPO, load_jsonl

CASES_PATH = REPO / "tests" / "fixtures" / "pages" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_PATH.read_text(encoding="utf-8"))
PROFILES = load_profiles()
MANIFEST = {row["id"]: row for row in load_jsonl(CORPUS / "manifest.jsonl")}


@cache
def cassette_pages(site: str) -> dict[str, tuple[bytes, str | None]]:
    """URL -> (body, Content-Type) of a cassette's responses."""
    out = {}
    for request, response in load_cassette(CASSETTES / f"{site}.yaml").data:
        ctype = (response["headers"].get("Content-Type") or [None])[0]
        out[request.uri] = (response["body"]["string"], ctype)
    return out


def case_input(case: dict[str, Any]) -> tuple[str, str]:
    """(url, text) of a case's saved response, decoded as a browser would."""
    if "corpus" in case:
        body = (CORPUS / "pages" / f"{case['corpus']}.html").read_bytes()
        text, _ = decode_html(body)
        url = MANIFEST[case["corpus"]]["url"]
    elif "cassette" in case:
        body, ctype = cassette_pages(case["cassette"])[case["url"]]
        text, _ = decode_html(body, ctype)
        url = case["url"]
    else:
        text, url = case["text"], case["url"]
    for key in ("edit", "edit_after", "edit_all"):
        if key in case:
            old, new = case[key]
            assert old in text, (case["name"], old)
            text = text.replace(old, new, -1 if key == "edit_all" else 1)
    if case.get("wrap_jpaas"):
        text = json.dumps({"data": {"html": text}, "success": True}, ensure_ascii=False)
    return case.get("url", url), text


def make_page(case: dict[str, Any], cms: str | None = None) -> pages.GenericPage:
    url, text = case_input(case)
    profile = PROFILES[case["site"]]
    return pages.page_for(url, text, cms or case["family"], pages.PageOptions.from_profile(profile))


#: What the spider asks of a page in each role, hence what a case records.
EXPECTED_KEYS = {"list": ("documents", "attachments_linked", "next_pages"),
                 "article": ("more_pages", "attachments")}


def observed(page: pages.GenericPage, case: dict[str, Any]) -> dict[str, Any]:
    """A page object's output for the case's role, as the cases file records it."""
    if case["role"] == "article":
        return {"more_pages": page.more_pages(),
                "attachments": [[link.url, link.text] for link in page.attachments()]}
    profile = PROFILES[case["site"]]
    links = page.links()
    return {"documents": [link.url for link in links if profile.is_article(link.url)],
            "attachments_linked": [link.url for link in links if is_attachment(link.url)],
            "next_pages": page.next_pages()}


def expected(case: dict[str, Any]) -> dict[str, Any]:
    return {key: case[key] for key in EXPECTED_KEYS[case["role"]]}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_page_object_output(case):
    page = make_page(case)
    assert type(page) is pages.FAMILIES[case["family"]]
    assert observed(page, case) == expected(case)


def test_every_family_has_cases():
    assert {c["family"] for c in CASES} == set(pages.FAMILIES)


# --- choice of family -------------------------------------------------------------------------


def case(name: str) -> dict[str, Any]:
    return next(c for c in CASES if c["name"] == name)


@pytest.mark.parametrize("name,family", [
    ("hanweb_column_datastore", "hanweb"), ("jpaas_unit_answer", "jpaas"),
    ("jpaas_unit_answer_empty", "jpaas"), ("trs_list_custom_pager", "generic"),
    ("ucap_list_first_page", "generic"), ("hanweb_article", "generic"),
])
def test_auto_recognises_each_page_by_its_format(name, family):
    """``cms: auto`` (today's behaviour): a JPaaS JSON answer or a Hanweb datastore picks that
    family; any other page is generic, and gives the output its own family's case expects."""
    c = case(name)
    page = make_page(c, "auto")
    assert page.family == family
    assert observed(page, c) == expected(c)



def test_the_profile_cms_decides_what_is_read():
    """A Hanweb column page read as TRS is plain HTML: no dataproxy.jsp paging; read as Hanweb
    (or auto) it pages on through dataproxy.jsp."""
    from tests.test_listing import HANWEB_PAGE

    url = "http://www.ningbo.gov.cn/col/col1229116967/index.html"
    options = pages.PageOptions(hanweb_perpage=2)
    for cms in ("hanweb", "auto"):
        [nxt] = pages.page_for(url, HANWEB_PAGE, cms, options).next_pages()
        assert "dataproxy.jsp?startrecord=3&endrecord=4&perpage=1" in nxt
    assert pages.page_for(url, HANWEB_PAGE, "trs", options).next_pages() == []
    assert pages.page_for(url, HANWEB_PAGE, "generic", options).next_pages() == []


def test_trs_pager_is_final_where_generic_falls_back():
    """On the last page of a TRS pager a stray "下一页" link is not followed by ``cms: trs``; the
    generic rules (no pager authority) follow it."""
    c = case("trs_list_last_page_pager_is_final")
    assert make_page(c).next_pages() == []
    assert make_page(c, "generic").next_pages() == [
        "https://www.gzdzhrss.com/bmgk/jcdd/zcfg_62443/index_5.html"]


def test_a_hanweb_page_is_parsed_once(monkeypatch):
    """links() and next_pages() share one parse of the datastore (the spider used to parse every
    Hanweb page twice)."""
    calls = []
    real = listing.hanweb_datastore

    def counting(text, url):
        calls.append(url)
        return real(text, url)

    monkeypatch.setattr(listing, "hanweb_datastore", counting)
    for cms in ("hanweb", "auto"):
        calls.clear()
        page = make_page(case("hanweb_column_datastore"), cms)
        page.links()
        page.next_pages()
        assert len(calls) == 1, cms


def test_profile_selectors_reach_the_page_objects():
    """``selectors.list`` / ``next`` / ``article`` narrow what a page object reads."""
    url, text = case_input(case("trs_list_custom_pager"))
    narrow = pages.PageOptions(list_selector="div.nonexistent", next_selector="a[href$='_2.html']")
    page = pages.page_for(url, text, "trs", narrow)
    assert page.links() == []
    assert page.next_pages() == []  # the selector matched nothing: no fallback to the pager
    url, text = case_input(case("trs_article_document_write_pdf"))
    assert pages.page_for(url, text, "trs").attachments()
    inside_nav = pages.PageOptions(article_selector="div.nonexistent")
    assert pages.page_for(url, text, "trs", inside_nav).attachments()  # no match: whole page
    title_only = pages.PageOptions(article_selector="title")
    assert pages.page_for(url, text, "trs", title_only).attachments() == []


def test_profile_cms_is_one_of_the_families():
    from crawler.profiles import ProfileError, parse_profile

    base = {"name": "demo", "title": "示例", "start_urls": ["http://www.a.gov.cn/zwgk/index.html"],
            "allowed_domains": ["www.a.gov.cn"], "article_patterns": [r"/t\d{8}_\d+\.html$"]}
    assert parse_profile(base).cms == "auto"
    assert parse_profile({**base, "cms": "jpaas"}).cms == "jpaas"
    with pytest.raises(ProfileError, match=r"demo.yaml: cms must be one of auto, generic, trs, "
                                           r"hanweb, jpaas, ucap, got 'wordpress'"):
        parse_profile({**base, "cms": "wordpress"}, "demo.yaml")
