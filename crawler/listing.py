"""List-page link discovery and pagination for the CMS families Chinese government portals run.

Plain functions over page text, tested against saved real list pages:

* :func:`extract_links` – anchors (optionally inside a container) plus links written by inline
  ``document.write`` scripts;
* :func:`list_next_pages` – the next list page: TRS
  ``createPageHTML(total, current, "index", "html")``, the custom
  ``Pager({size, current, prefix, suffix})`` (same ``_N`` scheme), "下一页" links, plain
  ``index_N.html`` / ``?page=N`` links;
* :func:`hanweb_datastore` / :func:`hanweb_next_url` – Hanweb/大汉 ``<datastore>`` records
  embedded in the page and the ``dataproxy.jsp`` XML pages after them;
* :func:`jpaas_html` / :func:`jpaas_next_url` – JPaaS ``build/unit`` JSON lists paged by
  ``paramJson``;
* :func:`article_pages` – the other pages of an article split over several pages.

URLs (canonical form, domains, traps) are :mod:`crawler.urls`, attachment types
:mod:`crawler.attachments`, challenge pages :mod:`crawler.challenges`. The tables used here (skipped
extensions and schemes, "next page" labels) are in ``spiders/data/listing.yaml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import yaml
from parsel import Selector

from crawler import htmltree
from crawler.attachments import extension_alternation
from crawler.urls import join, url_extension

TABLES_PATH = Path(__file__).resolve().parent.parent / "spiders" / "data" / "listing.yaml"


@lru_cache(maxsize=1)
def tables() -> dict[str, Any]:
    """The data tables of ``spiders/data/listing.yaml``."""
    return yaml.safe_load(TABLES_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Link:
    """A link found on a page: absolute URL and visible text."""

    url: str
    text: str = ""


# --- links ------------------------------------------------------------------------------------

_WS_RE = re.compile(r"\s+")
_TAG_RE = re.compile(r"<[^>]+>")
# <a ... href="x"> ... </a> written inside a script string (quotes possibly backslash-escaped)
_SCRIPT_A_RE = re.compile(
    r"""<a\s[^<>]*?href\s*=\s*\\?["']([^"'\\<>]+?)\\?["'][^<>]*>(.*?)</a>""", re.I | re.S
)


def _clean_text(text: str) -> str:
    return _WS_RE.sub(" ", unescape(_TAG_RE.sub("", text))).strip()


def _usable_href(href: str) -> bool:
    href = href.strip()
    if not href or href.startswith("#") or "+" in href or "{" in href:
        return False
    scheme = href.split(":", 1)[0].lower() if ":" in href.split("/", 1)[0] else ""
    if scheme and scheme in tables()["skip_schemes"]:
        return False
    return url_extension(href.split("?", 1)[0]) not in tables()["skip_extensions"]


def _base_url(sel: Selector, url: str) -> str:
    base = sel.css("base::attr(href)").get()
    return (join(url, base.strip()) or url) if base else url


def script_links(html: str, base_url: str) -> list[Link]:
    """Links inside inline ``<script>`` strings (``document.write('<a href=...>')``), skipping
    hrefs built from variables (they contain ``+``)."""
    sel = htmltree.selector(html) if isinstance(html, str) else html
    base = _base_url(sel, base_url)
    out = []
    for script in sel.css("script:not([src])::text").getall():
        for href, text in _SCRIPT_A_RE.findall(script):
            # a string cut short by a variable ("t2015_" + n + ".html") has no extension left
            if _usable_href(href) and (url_extension(href) or href.endswith("/")):
                url = join(base, unescape(href.strip()))
                if url:
                    out.append(Link(url, _clean_text(text)))
    return out


def extract_links(html: str | Selector, base_url: str, container: str | None = None,
                  scripts: bool = True) -> list[Link]:
    """Every usable link of the page (or of the elements matching CSS ``container``), absolute,
    in document order, first occurrence of each URL kept (with the longest visible text)."""
    sel = htmltree.selector(html) if isinstance(html, str) else html
    base = _base_url(sel, base_url)
    roots = sel.css(container) if container else [sel]
    found: dict[str, str] = {}
    for root in roots:
        for a in root.css("a[href]"):
            href = a.attrib.get("href", "")
            if not _usable_href(href):
                continue
            url = join(base, href.strip())
            if url is None:
                continue
            text = _clean_text(" ".join(a.css("::text").getall())) or a.attrib.get("title", "")
            if len(text) > len(found.get(url, "")):
                found[url] = text
            else:
                found.setdefault(url, text)
    if scripts:
        for root in roots:
            for link in script_links(root, base_url=base):
                found.setdefault(link.url, link.text)
    return [Link(url, text) for url, text in found.items()]


# --- list pagination --------------------------------------------------------------------------

_ARG = r"""\s*(\d+|[A-Za-z_$][\w$]*)\s*"""
_QARG = r"""\s*["']([^"']+)["']\s*"""
_CREATE_PAGE_RE = re.compile(rf"createPageHTML\({_ARG},{_ARG},{_QARG},{_QARG}\)")
_PAGER_RE = re.compile(r"\bPager\(\s*\{([^{}]*)\}\s*\)")
_KV_RE = re.compile(r"""(\w+)\s*:\s*(?:'([^']*)'|"([^"]*)"|([\w.]+))""")


@dataclass(frozen=True)
class PageScheme:
    """A ``_N`` pager: pages are ``prefix.suffix``, ``prefix_1.suffix`` ... ``prefix_{total-1}``."""

    total: int
    current: int  # 0-based
    prefix: str
    suffix: str

    def url(self, index: int, page_url: str) -> str:
        name = self.prefix if index == 0 else f"{self.prefix}_{index}"
        return urljoin(page_url, f"{name}.{self.suffix}")

    def next_url(self, page_url: str) -> str | None:
        return self.url(self.current + 1, page_url) if self.current + 1 < self.total else None

    def other_urls(self, page_url: str) -> list[str]:
        return [self.url(i, page_url) for i in range(self.total) if i != self.current]


def _js_int(token: str, script: str) -> int | None:
    if token.isdigit():
        return int(token)
    m = re.search(rf"\b(?:var|let|const)?\s*{re.escape(token)}\s*=\s*['\"]?(\d+)", script)
    return int(m.group(1)) if m else None


def page_schemes(html: str) -> list[PageScheme]:
    """The ``_N`` pagers a page calls: TRS ``createPageHTML(...)`` and ``Pager({...})``.

    Only calls are read (the function definitions have no literal arguments); numeric arguments
    may be variables assigned elsewhere in the page (``var countPage = 12``)."""
    if "createPageHTML" not in html and "Pager(" not in html:
        return []  # most pages: no need to parse them
    sel = htmltree.selector(html)
    scripts = "\n".join(sel.css("script:not([src])::text").getall())
    out = []
    for m in _CREATE_PAGE_RE.finditer(scripts):
        total, current = _js_int(m.group(1), scripts), _js_int(m.group(2), scripts)
        if total is not None and current is not None:
            out.append(PageScheme(total, current, m.group(3), m.group(4)))
    for m in _PAGER_RE.finditer(scripts):
        cfg = {k: a or b or c for k, a, b, c in _KV_RE.findall(m.group(1))}
        if {"size", "prefix", "suffix"} <= set(cfg) and cfg["size"].isdigit():
            current = int(cfg["current"]) if cfg.get("current", "0").isdigit() else 0
            out.append(PageScheme(int(cfg["size"]), current, cfg["prefix"], cfg["suffix"]))
    return out


_NUMBERED_RE = re.compile(r"^(?P<stem>.+)_(?P<n>\d{1,4})\.(?P<ext>s?html?|jsp|php|aspx?)$")
_PAGE_PARAMS = ("page", "pageno", "pagenum", "pageindex", "currpage", "curpage", "p", "pn")


def _stem(name: str) -> str:
    """``index_3.html`` -> ``index``; ``t20170702_21164061.html`` -> itself without extension
    (page numbers have at most 4 digits, TRS document ids more)."""
    m = _NUMBERED_RE.match(name)
    return m.group("stem") if m else name.rsplit(".", 1)[0]


def _query_page(query: str) -> int | None:
    for k, v in parse_qsl(query):
        if k.lower() in _PAGE_PARAMS and v.isdigit():
            return int(v)
    return None


def _page_number(url: str, page_url: str) -> tuple[str, int] | None:
    """How ``url`` numbers a sibling page of ``page_url``: ``("path", 3)`` for ``index_3.html``,
    ``("query", 3)`` for ``?page=3`` on the same path; None when it is not a page of the same
    list or article."""
    a, b = urlsplit(url), urlsplit(page_url)
    if a.netloc != b.netloc:
        return None
    if a.query and a.path == b.path:
        n = _query_page(a.query)
        return ("query", n) if n is not None else None
    a_dir, a_name = a.path.rsplit("/", 1) if "/" in a.path else ("", a.path)
    b_dir, b_name = b.path.rsplit("/", 1) if "/" in b.path else ("", b.path)
    if a.query or a_dir != b_dir:
        return None
    m = _NUMBERED_RE.match(a_name)
    if m and m.group("stem") == _stem(b_name or "index.html"):
        return ("path", int(m.group("n")))
    return None


def _current_number(page_url: str) -> int:
    parts = urlsplit(page_url)
    n = _query_page(parts.query)
    if n is not None:
        return n
    m = _NUMBERED_RE.match(parts.path.rsplit("/", 1)[-1])
    return int(m.group("n")) if m else 0


def next_links(links: Iterable[Link]) -> list[str]:
    """URLs of "下一页" / "next" links."""
    labels = {label.lower() for label in tables()["next_labels"]}
    return [link.url for link in links if link.text.strip().lower() in labels]


def scheme_next_pages(html: str, page_url: str) -> list[str]:
    """The next list page the page's ``_N`` pager scripts give (empty on their last page)."""
    out: list[str] = []
    for scheme in page_schemes(html):
        if scheme.prefix.lower().startswith("index") or len(out) == 0:
            nxt = scheme.next_url(page_url)
            if nxt:
                out.append(nxt)
    return list(dict.fromkeys(out))


def list_next_pages(html: str, page_url: str, links: Iterable[Link] | None = None) -> list[str]:
    """The next page(s) of a list page, one step at a time (so a crawl can stop paging early).

    Order of evidence: ``_N`` pager scripts (TRS / custom Pager), "下一页" links, then numbered
    sibling links (``index_N.html``, ``?page=N``): the lowest page number above the current one."""
    links = list(links) if links is not None else extract_links(html, page_url)
    out = scheme_next_pages(html, page_url)
    if not out:
        out = [u for u in next_links(links) if u != page_url]
    if not out:
        current = _current_number(page_url)
        numbered = sorted(
            (num[1], link.url) for link in links
            if (num := _page_number(link.url, page_url)) is not None and num[1] > current
        )
        if numbered:
            out = [numbered[0][1]]
    return list(dict.fromkeys(out))


@lru_cache(maxsize=1)
def _attachment_hint_re() -> re.Pattern[str]:
    """``.<extension>`` not followed by a letter or digit; the lookahead on the extensions' first
    letters only makes the scan of a whole page faster (same matches)."""
    alternation = extension_alternation()
    firsts = "".join(sorted({c for ext in alternation.split("|") for c in (ext[0].lower(),
                                                                            ext[0].upper())}))
    return re.compile(rf"\.(?=[{re.escape(firsts)}])(?:{alternation})(?![A-Za-z0-9])", re.I)


#: ``?page=2``-style parameters are found from their ``=<digit>`` (a literal scan, much faster on
#: a whole page than the case-insensitive alternation) and the few characters before it.
_EQUALS_DIGIT_RE = re.compile(r"=\d")
_QUERY_PAGE_PARAM_BEFORE_RE = re.compile(rf"[?&;](?:{'|'.join(_PAGE_PARAMS)})\Z", re.I)
_QUERY_PAGE_PARAM_SPAN = 1 + max(map(len, _PAGE_PARAMS))


def _query_page_hint(html: str) -> bool:
    """True when ``html`` holds ``[?&;]<page parameter>=<digit>`` (any case)."""
    return any(_QUERY_PAGE_PARAM_BEFORE_RE.search(html, max(0, m.start() - _QUERY_PAGE_PARAM_SPAN),
                                                  m.start())
               for m in _EQUALS_DIGIT_RE.finditer(html))


def attachment_hint(html: str) -> bool:
    """A cheap look at raw HTML: does it name a file of an attachment type anywhere?"""
    return _attachment_hint_re().search(html) is not None


def article_link_hints(html: str, page_url: str) -> bool:
    """A cheap look at an article's raw HTML: could it link an attachment or its own next page?

    When this is False, :func:`extract_links` would find nothing an article needs (attachments,
    ``<stem>_N`` siblings, ``?page=N`` pages), so the full link walk can be skipped."""
    if attachment_hint(html) or _query_page_hint(html):
        return True
    stem = _stem(urlsplit(page_url).path.rsplit("/", 1)[-1])
    return bool(stem) and f"{stem}_" in html


def article_pages(html: str, page_url: str, links: Iterable[Link] | None = None) -> list[str]:
    """The other pages of a multi-page article, in order (``t2015_1.html``, ``t2015_2.html`` ...).

    Evidence: a TRS ``createPageHTML(n, 0, "<this page's stem>", ext)`` call with n > 1, or links
    to numbered siblings of this page (``<stem>_N.html``, or ``?page=N`` with N >= 2)."""
    stem = _stem(urlsplit(page_url).path.rsplit("/", 1)[-1])
    urls: list[str] = []
    for scheme in page_schemes(html):
        if scheme.prefix == stem and scheme.total > 1:
            urls.extend(scheme.url(i, page_url) for i in range(1, scheme.total))
    links = list(links) if links is not None else extract_links(html, page_url)
    numbered = []
    for link in links:
        num = _page_number(link.url, page_url)
        if num and num[1] >= (2 if num[0] == "query" else 1):
            numbered.append((num[1], link.url))
    urls.extend(u for _, u in sorted(numbered))
    return [u for u in dict.fromkeys(urls) if u != page_url]


# --- Hanweb / 大汉 ------------------------------------------------------------------------------

_DATASTORE_RE = re.compile(r"<datastore>(.*?)</datastore>", re.S | re.I)
_RECORD_RE = re.compile(r"<record>\s*<!\[CDATA\[(.*?)\]\]>\s*</record>", re.S | re.I)
_NEXTGROUP_RE = re.compile(r"<nextgroup>\s*<!\[CDATA\[(.*?)\]\]>\s*</nextgroup>", re.S | re.I)


@dataclass(frozen=True)
class HanwebList:
    """Records of a Hanweb column: embedded in the page, or one ``dataproxy.jsp`` answer."""

    records: tuple[str, ...]  # HTML snippets, one per document
    total: int | None  # totalrecord, when known
    proxy_url: str | None  # absolute dataproxy.jsp URL carrying the column parameters
    perpage: int


def _js_number(name: str, text: str) -> int | None:
    m = re.search(rf"""\b{name}\s*[:=]\s*['"]?(\d+)""", text, re.I)
    return int(m.group(1)) if m else None


def hanweb_datastore(text: str, page_url: str) -> HanwebList | None:
    """Parse Hanweb records from a column page (``<script type="text/xml"><datastore>``) or a
    ``dataproxy.jsp`` XML answer. None when the text holds no datastore."""
    m = _DATASTORE_RE.search(text)
    if not m:
        return None
    store = m.group(1)
    records = tuple(r.strip() for r in _RECORD_RE.findall(store))
    tm = re.search(r"<totalrecord>\s*(\d+)\s*</totalrecord>", store, re.I)
    total = int(tm.group(1)) if tm else _js_number("totalRecord", text)
    asked = dict(parse_qsl(urlsplit(page_url).query))
    perpage = (int(asked["perpage"]) if asked.get("perpage", "").isdigit()
               else _js_number("perpage", text) or 15)
    proxy = None
    ng = _NEXTGROUP_RE.search(store)
    if ng:
        href = htmltree.selector(ng.group(1)).css("a::attr(href)").get()
        if href:
            proxy = join(page_url, unescape(href.strip()))
    if proxy is None:
        pm = re.search(r"""proxyUrl\s*[:=]\s*['"]([^'"]+)['"]""", text)
        if pm:
            proxy = join(page_url, pm.group(1))
    if proxy is None and "dataproxy.jsp" in page_url:
        proxy = page_url
    return HanwebList(records, total, proxy, perpage)


def hanweb_links(store: HanwebList, page_url: str) -> list[Link]:
    """The document links of a Hanweb record set."""
    html = "<ul>" + "".join(store.records) + "</ul>"
    return extract_links(html, page_url, scripts=False)


def hanweb_next_url(store: HanwebList, page_url: str, chunk: int | None = None) -> str | None:
    """The ``dataproxy.jsp`` URL for the records after the ones in ``store`` (GET, with
    ``startrecord``/``endrecord``/``perpage`` and the column parameters), or None at the end."""
    if not store.proxy_url or not store.records:
        return None
    parts = urlsplit(store.proxy_url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if k.lower() not in ("page", "startrecord", "endrecord", "perpage")]
    start = 1
    if "dataproxy.jsp" in page_url:
        current = dict(parse_qsl(urlsplit(page_url).query))
        start = int(current.get("startrecord", "1") or 1)
        end = int(current.get("endrecord", "0") or 0)
        if end and len(store.records) < end - start + 1:
            return None  # a short page is the last one
    next_start = start + len(store.records)
    if store.total is not None and next_start > store.total:
        return None
    size = chunk or max(len(store.records), store.perpage)
    query = [("startrecord", str(next_start)), ("endrecord", str(next_start + size - 1)),
             ("perpage", str(store.perpage)), *params]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# --- JPaaS build/unit -------------------------------------------------------------------------


def jpaas_html(text: str) -> str | None:
    """The HTML fragment of a JPaaS ``front/page/build/unit`` JSON answer (``data.html``)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    inner = data.get("data") if isinstance(data, Mapping) else None
    html = inner.get("html") if isinstance(inner, Mapping) else None
    return html if isinstance(html, str) else None


def jpaas_next_url(url: str) -> str:
    """The same ``build/unit`` request for the next page (``paramJson={"pageNo": N+1, ...}``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    out, found = [], False
    for k, v in query:
        if k == "paramJson":
            try:
                param = json.loads(v)
            except ValueError:
                param = {}
            param["pageNo"] = int(param.get("pageNo", 1)) + 1
            v, found = json.dumps(param, separators=(",", ":")), True
        out.append((k, v))
    if not found:
        out.append(("paramJson", json.dumps({"pageNo": 2, "pageSize": "15"},
                                            separators=(",", ":"))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(out), ""))
