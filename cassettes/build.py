"""Build the offline cassettes of the site profiles: ``python cassettes/build.py``.

Each profile gets ``cassettes/<name>.yaml`` (a vcrpy cassette, written with
:func:`tests.cassettes.write_cassette`) holding:

* real pages: bytes of ``tests/corpus/pages/NNN.html`` served at the page's real URL (manifest);
* seed article pages: ``tests/fixtures/seed_pages/NNN.html`` (seed text in the portal's CMS
  markup) at the URL suggested in that directory's README;
* built pages, where the site has no saved page: list pages in the site's CMS family markup
  linking the real articles (TRS ``createPageHTML``, Hanweb ``<datastore>``, "下一页" lists),
  a second page of a long seed article (TRS ``_1.html``), a small PDF attachment, robots.txt;
* ``404`` answers for every other URL the crawl will ask for (documents a real list links but
  nobody saved): the cassette then answers every request of an offline crawl.

The 404 set is found by walking the cassette with the spider's own page objects
(:mod:`crawler.pages`, for the profile's ``cms``) and the profile's patterns.
``cassettes/README.md`` says, per cassette, what is real and what was built.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler import urls  # noqa: E402
from crawler.attachments import is_attachment  # noqa: E402
from crawler.pages import PageOptions, page_for  # noqa: E402
from crawler.profiles import Profile, load_profiles  # noqa: E402
from tests.cassettes import Interaction, write_cassette  # noqa: E402

CORPUS = REPO / "tests" / "corpus"
SEED_PAGES = REPO / "tests" / "fixtures" / "seed_pages"
OUT = Path(__file__).resolve().parent

HTML = {"Content-Type": "text/html; charset=utf-8"}
HTML_UNKNOWN = {"Content-Type": "text/html"}  # real page, server charset unknown
ROBOTS = b"User-agent: *\nDisallow: /search/\nDisallow: /module/search/\n"

#: Seed article pages and the URLs their README suggests (tests/fixtures/seed_pages/README.md).
SEED_URLS = {
    "liuzhi": ("000", "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202303/t20230328_78512345.html"),
    "tzw": ("001", "http://www.tzwsfq.gov.cn/xxgkml/ggs/202303/t20230310_1234567.html"),
    "ningbo": ("002", "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"),
    "gulou": ("003", "http://www.hc.gov.cn/zwgk_265/fdzdgknr/fzzfjs/202503/t20250310_14356789.html"),
    "qlyn": ("004", "http://www.ynjjjc.gov.cn/html/2021/zsdt_1206/12345.html"),
}
#: Real corpus articles per profile (manifest ids).
CORPUS_ARTICLES = {
    "atxlyj": ["049", "061"],
    "gzdzhrss": ["054", "055", "060"],
    "cmse": ["001"],
    "zjfgw": ["003"],
    "shanxi": ["004"],
    "wanzai": ["007", "006"],
    "yichun": ["009"],
    "whgsj": ["012"],
    "kepu": ["042"],
    "people": ["044", "045"],
    "hexinhua": ["047"],
}
#: Real list pages (manifest ids) served at their URLs.
CORPUS_LISTS = {"atxlyj": ["058", "051"], "gzdzhrss": ["057", "053"]}


@dataclass
class Site:
    profile: Profile
    pages: dict[str, Interaction] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, url: str, body: bytes, headers: dict[str, str] | None = None,
            status: int = 200) -> None:
        url = urls.canonicalize(url)
        reason = {200: "OK", 404: "Not Found"}.get(status, "OK")
        self.pages[url] = Interaction(url=url, body=body, status=status,
                                      headers=dict(headers or HTML), reason=reason)


def manifest() -> dict[str, dict]:
    rows = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    return {r["id"]: r for r in rows}


def gold() -> dict[str, dict]:
    rows = [json.loads(line) for line in (CORPUS / "gold.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    return {r["id"]: r for r in rows}


def seed_title(html: str) -> str:
    for pattern in (r'<meta name="ArticleTitle" content="([^"]+)"', r"<h1[^>]*>(.*?)</h1>",
                    r"<h2[^>]*>(.*?)</h2>", r"<title>(.*?)</title>"):
        m = re.search(pattern, html, re.S)
        if m:
            return re.sub(r"<[^>]+>|\s+", "", m.group(1))
    return "正文"


def date_of(url: str) -> str:
    m = re.search(r"(20\d\d)(\d\d)(\d\d)", url) or re.search(r"/(20\d\d)/(\d{1,2})/(\d{1,2})/", url)
    if m:
        return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    m = re.search(r"/(20\d\d)-(\d\d)/(\d\d)/", url) or re.search(r"/(20\d\d)(\d\d)/", url)
    return "-".join(m.groups()) if m else ""


# --- built list pages, one function per CMS family -------------------------------------------


def _items(entries: list[tuple[str, str]], base: str) -> str:
    rows = []
    for url, title in entries:
        rel = url if not url.startswith(base) else url[len(base):]
        rows.append(f'<li><a href="{escape(rel)}" target="_blank" title="{escape(title)}">'
                    f"{escape(title)}</a><span>{date_of(url)}</span></li>")
    return "\n".join(rows)


def trs_list(site: str, column: str, page_url: str, entries: list[tuple[str, str]],
             total: int = 1, current: int = 0, ext: str = "html") -> bytes:
    """A TRS WCM column page: ``<ul>`` of documents, pager from createPageHTML."""
    base = page_url.rsplit("/", 1)[0] + "/"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{column}_{site}</title>
<meta name="SiteName" content="{site}"><meta name="ColumnName" content="{column}">
<script type="text/javascript" src="/images/createpage.js"></script></head>
<body><div class="location">当前位置：<a href="/">首页</a> &gt; <a href="./">{column}</a></div>
<div class="list_con"><ul class="list">
{_items(entries, base)}
</ul>
<div class="page"><script>createPageHTML({total}, {current}, "index", "{ext}")</script></div>
</div></body></html>
""".encode()


def hanweb_list(site: str, column: str, page_url: str, columnid: str, unitid: str,
                entries: list[tuple[str, str]]) -> bytes:
    """A Hanweb JCMS column page: records embedded as ``<datastore>`` for jpage.js."""
    records = "\n".join(
        f'<record><![CDATA[<li><a href="{escape(urlsplit(u).path)}" target="_blank" '
        f'title="{escape(t)}">{escape(t)}</a><span>{date_of(u)}</span></li>]]></record>'
        for u, t in entries
    )
    proxy = (f"/module/web/jpage/dataproxy.jsp?page=1&webid=1&path=/&columnid={columnid}"
             f"&unitid={unitid}&webname={site}&permissiontype=0")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{column} {site}</title>
<meta name="SiteName" content="{site}"><meta name="ColumnName" content="{column}"></head>
<body><div class="bread">当前位置：<a href="/">首页</a> &gt;
<a href="/col/col{columnid}/index.html">{column}</a></div>
<div class="list" id="{unitid}"><script type="text/xml"><datastore>
<nextgroup><![CDATA[<a href="{escape(proxy)}"></a>]]></nextgroup>
<recordset>
{records}
</recordset></datastore></script></div>
<script language="javascript" src="/module/web/jpage/jpage.js"></script>
<script>$(function(){{ $('#{unitid}').jpage({{ dataStore: dataStore, perPage: 15,
  totalRecord: {len(entries)}, proxyUrl: '/module/web/jpage/dataproxy.jsp', groupSize: 3 }}); }});
</script>
</body></html>
""".encode()


def plain_list(site: str, column: str, page_url: str, entries: list[tuple[str, str]],
               next_href: str | None = None, prev_href: str | None = None) -> bytes:
    """A generic/UCAP column page with 上一页/下一页 links."""
    base = page_url.rsplit("/", 1)[0] + "/"
    pager = '<a href="index.shtml">首页</a> '
    pager += f'<a href="{prev_href}">上一页</a> ' if prev_href else "<span>上一页</span> "
    pager += f'<a href="{next_href}">下一页</a>' if next_href else "<span>下一页</span>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{column}-{site}</title>
<meta name="SiteName" content="{site}"><meta name="ColumnName" content="{column}"></head>
<body><div class="crumb">当前位置：<a href="/">首页</a> &gt; <span>{column}</span></div>
<ul class="news-list">
{_items(entries, base)}
</ul>
<div class="pagination">{pager}</div>
</body></html>
""".encode()


def split_trs_article(html: str, page_url: str) -> tuple[bytes, bytes]:
    """A long TRS article as the CMS splits it: first half + createPageHTML(2, 0, stem),
    second half at ``<stem>_1.html`` with createPageHTML(2, 1, stem)."""
    stem = page_url.rsplit("/", 1)[1].rsplit(".", 1)[0]
    m = re.search(r'(<div class="view TRS_UEDITOR[^"]*"[^>]*>)(.*?)(</div>)', html, re.S)
    if not m:
        raise SystemExit(f"no TRS_UEDITOR body in the seed page for {page_url}")
    paras = re.findall(r"<p\b.*?</p>", m.group(2), re.S)
    half = len(paras) // 2
    pager = ('<div class="page"><script>createPageHTML(2, {cur}, "' + stem
             + '", "html")</script></div>')

    def page(part: list[str], cur: int) -> bytes:
        body = m.group(1) + "\n".join(part) + m.group(3) + pager.format(cur=cur)
        return (html[:m.start()] + body + html[m.end():]).encode()

    return page(paras[:half], 0), page(paras[half:], 1)


#: A minimal one-page PDF (built: the real attachment was not saved).
def tiny_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


# --- per-site assembly ----------------------------------------------------------------------


def build_sites() -> dict[str, Site]:
    profiles = load_profiles()
    man, gld = manifest(), gold()
    sites = {name: Site(p) for name, p in profiles.items()}

    def real(site: Site, pid: str) -> tuple[str, str]:
        row = man[pid]
        site.add(row["url"], (CORPUS / "pages" / f"{pid}.html").read_bytes(), HTML_UNKNOWN)
        return row["url"], (gld.get(pid) or {}).get("title") or row["url"]

    for name, pids in CORPUS_LISTS.items():
        for pid in pids:
            real(sites[name], pid)
        sites[name].notes.append(f"real list pages {', '.join(pids)}")
    for name, pids in CORPUS_ARTICLES.items():
        site = sites[name]
        entries = [real(site, pid) for pid in pids]
        site.notes.append(f"real article pages {', '.join(pids)}")
        title = site.profile.title.split(" (")[0]
        start = site.profile.start_urls
        if name == "atxlyj":
            pdf = urls.canonicalize(
                "https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108586100144513.pdf")
            site.add(pdf, tiny_pdf("2020.1.8"), {"Content-Type": "application/pdf"})
            site.notes.append("built: the PDF attachment of 049 (linked by document.write; "
                              "the restoration lacks the file) as a one-page PDF")
        elif name == "gzdzhrss":
            site.add(start[2], trs_list(title, "县域动态", start[2], [entries[1]]))
            site.notes.append("built: TRS list gzdt/xydt/index.html linking 055")
        elif name == "zjfgw":
            site.add(start[0], hanweb_list(title, "统计数据", start[0], "1621004", "4892867",
                                           entries))
            site.notes.append("built: Hanweb column page (<datastore>) linking 003")
        elif name == "wanzai":
            second = start[0].replace("index.shtml", "index_1.shtml")
            site.add(start[0], plain_list(title, "统计信息", start[0], entries[:1],
                                          next_href="index_1.shtml"))
            site.add(second, plain_list(title, "统计信息", second, entries[1:],
                                        prev_href="index.shtml"))
            site.notes.append("built: two-page list (下一页) linking 007 then 006")
        elif name == "shanxi":
            site.add(start[0], trs_list(title, "山西要闻", start[0], entries, ext="shtml"))
            site.notes.append("built: TRS list linking 004")
        elif name in ("people",):
            for url, entry in zip(start, entries, strict=True):
                site.add(url, plain_list(title, "权威发布", url, [entry]))
            site.notes.append("built: one list page per channel linking 044 / 045")
        else:
            column = {"cmse": "新闻发布会", "yichun": "统计公报", "whgsj": "法律",
                      "kepu": "时政", "hexinhua": "新华视界"}[name]
            family = trs_list if site.profile.cms == "trs" else plain_list
            site.add(start[0], family(title, column, start[0], entries))
            site.notes.append(f"built: {site.profile.cms} list page linking {', '.join(pids)}")

    for name, (pid, url) in SEED_URLS.items():
        site = sites[name]
        html = (SEED_PAGES / f"{pid}.html").read_text(encoding="utf-8")
        entry = (url, seed_title(html))
        start = site.profile.start_urls[0]
        if name == "gulou":
            first, second = split_trs_article(html, url)
            site.add(url, first)
            site.add(url.replace(".html", "_1.html"), second)
            site.notes.append(f"seed page {pid} split into two TRS pages (createPageHTML, _1.html)")
        else:
            site.add(url, html.encode())
            site.notes.append(f"seed page {pid}")
        if name == "ningbo":
            site.add(start, hanweb_list("宁波市人民政府", "法治政府建设", start, "1229116967",
                                        "4045498", [entry]))
        elif site.profile.cms == "trs":
            site.add(start, trs_list(site.profile.title, "法治政府建设", start, [entry]))
        else:
            site.add(start, plain_list(site.profile.title, "栏目", start, [entry]))
        site.notes.append(f"built: {site.profile.cms} list page linking it")
    return sites


def crawl_urls(site: Site) -> set[str]:
    """Every URL an offline crawl of ``site`` requests, found with the spider's page objects."""
    profile = site.profile
    seen: set[str] = set()
    todo = [(urls.canonicalize(u), "list") for u in profile.start_urls]
    while todo:
        url, role = todo.pop()
        if url in seen or not urls.host_allowed(url, profile.allowed_domains):
            continue
        seen.add(url)
        page = site.pages.get(url)
        if page is None or page.status != 200 or not page.headers["Content-Type"].startswith(
                "text/html"):
            continue
        text = page.body.decode("utf-8", "replace")
        reader = page_for(url, text, profile.cms, PageOptions.from_profile(profile))
        if role == "list":
            for link in reader.links():
                u = urls.canonicalize(link.url)
                if is_attachment(u):
                    todo.append((u, "attachment"))
                elif profile.is_article(u):
                    todo.append((u, "article"))
            todo.extend((urls.canonicalize(u), "list") for u in reader.next_pages())
        else:
            todo.extend((urls.canonicalize(u), "page") for u in reader.more_pages())
            todo.extend((urls.canonicalize(link.url), "attachment")
                        for link in reader.attachments())
    return seen


def main() -> None:
    sites = build_sites()
    lines = ["# Cassettes", "",
             "One vcrpy cassette per site profile, built by `python cassettes/build.py` (see its "
             "docstring).", "Real = bytes of a saved page at its real URL; built = written for "
             "the cassette in the site's CMS markup. Every host has a built `robots.txt`; URLs "
             "a crawl asks for that nobody saved answer `404`.", ""]
    for name, site in sorted(sites.items()):
        missing = sorted(u for u in crawl_urls(site) if u not in site.pages)
        for url in missing:
            site.add(url, b"", {"Content-Type": "text/html"}, status=404)
        hosts = sorted({urlsplit(u).netloc for u in site.pages})
        for host in hosts:
            scheme = urlsplit(next(u for u in site.pages if f"//{host}/" in u)).scheme
            site.add(f"{scheme}://{host}/robots.txt", ROBOTS, {"Content-Type": "text/plain"})
        write_cassette(OUT / f"{name}.yaml", site.pages.values())
        extra = f"; 404 (not saved): {len(missing)} URLs" if missing else ""
        lines.append(f"- `{name}.yaml` — {site.profile.title}: {'; '.join(site.notes)}{extra}.")
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(sites)} cassettes to {OUT}")


if __name__ == "__main__":
    main()
