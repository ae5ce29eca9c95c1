"""extract(): one page -> Document. Parse once, clean the DOM, extract, clean lines, read
metadata."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

import trafilatura
from lxml import html as lxml_html
from lxml.html import HtmlElement

from crawler.challenges import detect_challenge, header_values
from crawler.extract import dom, findings, meta
from crawler.extract.decode import decode_html
from crawler.extract.lines import (
    REVIEW,
    SPAM,
    chrome_run,
    classify_line,
    normalise,
    spam_verdict,
)
from crawler.items import Document

_TABLE_ROW = re.compile(r"^\|.*\|$")
_CELL_SEP = re.compile(r"\s*\|\s*")
_WS = re.compile(r"[ \t\u3000\xa0]+")
#: Lines this long are paragraphs: a repeat of one is repeated content.
LONG_LINE = 20
HEAD_LINES = 3
#: Lines this short are fragments: a run of them is also judged as one line (``字体：`` ``小``
#: ``中`` ``大`` split over lines by the template).
SHORT_FRAGMENT = 12
#: A body with fewer letters than this, its title aside, has no real text (``无``, a stray value).
MIN_BODY_CHARS = 4
_LETTERS = re.compile(r"[\W_]+")
#: ``Document.published_from`` values: where the published date was read.
PAGE, META, URL = "page", "meta", "url"


def _header(headers: Any, name: str) -> str | None:
    values = header_values(headers, name)
    return values[0] if values else None


def _trafilatura_text(tree: HtmlElement, url: str | None) -> str:
    """trafilatura on a tree it may modify; tables as tab-separated rows (not markdown pipes)."""
    text = trafilatura.extract(
        tree, url=url or None, include_comments=False, include_tables=True, deduplicate=False
    )
    if not text:
        return ""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if _TABLE_ROW.match(s):
            cells = [c for c in _CELL_SEP.split(s.strip("|")) if c]
            s = "\t".join(cells)
        if s:
            out.append(s)
    return "\n".join(out)


def _container_text(container: HtmlElement, url: str | None) -> list[str]:
    """Text of the article container: trafilatura on a copy of it; our own block serialisation when
    trafilatura keeps too little of it (tiny bodies, table-only bodies)."""
    own = dom.block_lines(container)
    own_chars = sum(len(x.replace(" ", "")) for x in own)
    doc = lxml_html.document_fromstring("<html><body></body></html>")
    doc.find("body").append(copy.deepcopy(container))
    text = _trafilatura_text(doc, url)
    got = len(re.sub(r"\s", "", text))
    if own_chars and got < 0.6 * own_chars:
        return own
    return text.splitlines()


def _chrome_runs(lines: list[str]) -> set[int]:
    """Indexes of the lines in runs of two or more short fragments that, read as one line, are
    reading/share controls or site chrome (any zone: the rules see every short line of the page)."""
    sizes = [len(normalise(line)) for line in lines]
    out: set[int] = set()
    i, n = 0, len(lines)
    while i < n:
        j = i
        while j < n and 0 < sizes[j] <= SHORT_FRAGMENT:
            j += 1
        if j - i >= 2 and chrome_run(lines[i:j]):
            out.update(range(i, j))
        i = max(j, i + 1)
    return out


def has_body_text(lines: list[str], title: str | None) -> bool:
    """Whether cleaned lines hold real text: :data:`MIN_BODY_CHARS` letters or more, lines that
    only repeat the title left aside."""
    ntitle = normalise(title or "")
    letters = sum(len(_LETTERS.sub("", line)) for line in lines if normalise(line) != ntitle)
    return letters >= MIN_BODY_CHARS


def _clean_lines(lines: list[str], doc: Document, title: str | None, whole_page: bool) -> list[str]:
    """Line-level removal: spam, boilerplate (zoned, and runs of short fragments), repeated
    paragraphs."""
    removed = doc.removed
    lines = [_WS.sub(" ", raw).strip() for raw in lines]
    lines = [line for line in lines if line]
    chrome = _chrome_runs(lines)
    n = len(lines)
    kept: list[str] = []
    seen: set[str] = set()
    dup_flags: list[bool] = []
    in_tail = False
    ntitle = normalise(title or "")
    review = False
    for i, line in enumerate(lines):
        if i in chrome:
            removed["boilerplate"] += 1
            continue
        verdict = spam_verdict(line)
        if verdict == SPAM:
            removed["spam"] += 1
            doc.spam.append(line)
            continue
        review = review or verdict == REVIEW
        if i < HEAD_LINES:
            zone = "head"
        elif in_tail or (whole_page and i >= n - 12):
            zone = "tail"
        else:
            zone = "body"
        label = classify_line(line, zone)
        if label is not None:
            if label == "footer":
                in_tail = True
            removed["boilerplate"] += 1
            continue
        key = normalise(line)
        if key in seen and (len(key) >= LONG_LINE or (kept and dup_flags and dup_flags[-1])):
            removed["repeated"] += 1
            dup_flags.append(True)
            continue
        if ntitle and key == ntitle and kept:
            # the title again in the middle of the text: the start of a repeated copy
            removed["repeated"] += 1
            dup_flags.append(True)
            continue
        seen.add(key)
        kept.append(line)
        dup_flags.append(False)
    if review:
        doc.findings.append("spam_review")
    return kept


def _may_repeat(root: HtmlElement, lines: list[str], probes: int = 5) -> bool:
    """Cheap test before the full walk: does the opening of some body paragraph occur twice in
    the page's raw text? (A copy of the body elsewhere on the page must repeat it.)"""
    body = root.find("body")
    page_text = "".join((body if body is not None else root).itertext())
    for line in lines[1 : probes + 1] or lines:  # the first line often repeats the title
        opening = line.split()[0][:12] if line.split() else ""
        if len(opening) >= 6 and page_text.count(opening) >= 2:
            return True
    return False


def _count_outside_repeats(root: HtmlElement, container: HtmlElement, kept: list[str]) -> int:
    """Paragraphs outside the container that repeat a paragraph of the article (hidden or mobile
    copies of the body): not extracted, counted as repeated."""
    long_lines = [x for x in kept if len(x) >= LONG_LINE]
    if not long_lines or not _may_repeat(root, long_lines):
        return 0
    body_keys = {normalise(x) for x in long_lines}
    inside = set(container.iter())
    count = 0
    for el in root.iter("p", "div", "li", "td"):
        if el in inside or len(el) > 3:
            continue
        t = normalise(dom.node_text(el))
        if len(t) >= LONG_LINE and t in body_keys:
            count += 1
    return count


def extract(body: bytes | str, url: str,
            headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
            status: int | None = None) -> Document:
    """Extract one page: clean text, metadata, spam and page-level findings -> :class:`Document`.

    ``status`` is the HTTP status when known: challenge pages are recognised by
    :func:`crawler.challenges.detect_challenge` exactly as the spiders recognise them."""
    if isinstance(body, bytes):
        text, _ = decode_html(body, _header(headers, "content-type"))
    else:
        text = body
    doc = Document(url=url)
    root = dom.parse(text)
    tags = meta.meta_tags(root)
    doc.meta = meta.kept_meta(tags)
    title_el = root.find(".//title")
    title_tag = title_el.text_content() if title_el is not None else ""
    scripts = [s.text or "" for s in root.iter("script")] + [
        s.get("src") or "" for s in root.iter("script")
    ]

    # page-level findings that need the raw page (scripts, meta, host)
    doc.findings.extend(findings.script_findings(scripts))
    doc.findings.extend(findings.meta_findings(tags, url))
    challenge = detect_challenge(status, headers, body, root)
    doc.challenge = challenge

    report = dom.DomReport()
    dom.remove_hidden_spam(root, report)

    container = dom.find_container(root, report.hidden)
    body_el = root.find("body")
    spam_scope = container if container is not None else body_el
    if spam_scope is not None:
        dom.remove_visible_spam(spam_scope, report)
    if report.link_farm:
        doc.findings.append("hidden_link_farm")
    doc.spam.extend(report.spam)
    doc.removed["spam"] += len(report.spam)
    segments = list(dom.walk_segments(root, container))
    before = [t for r, t in segments if r < 0]
    inside = [t for r, t in segments if r == 0]
    after = [t for r, t in segments if r > 0]

    heads = meta.headings(root, container)
    doc.title, hijacked = meta.choose_title(tags, title_tag, heads)
    if hijacked:
        doc.findings.append("title_hijack")

    # metadata: labels before the container, then the head of the container, then after it
    labelled = meta.labelled_fields(before[-400:])
    for k, v in meta.labelled_fields(inside[:12] + after[:200]).items():
        labelled.setdefault(k, v)
    fields = meta.field_values(labelled)

    scope = container.getparent() if container is not None else None
    scope_scripts = [s.text or "" for s in scope.iter("script")] if scope is not None else scripts
    doc.attachments = meta.attachments(root, scope, url, scope_scripts)

    # text
    if container is not None:
        lines = _container_text(container, url)
        kept = _clean_lines(lines, doc, doc.title, whole_page=False)
        doc.removed["repeated"] += _count_outside_repeats(root, container, kept)
    else:
        work = copy.deepcopy(root)
        lines = _trafilatura_text(work, url).splitlines()
        kept = _clean_lines(lines, doc, doc.title, whole_page=True)
    if kept and not has_body_text(kept, doc.title):
        doc.removed["boilerplate"] += len(kept)  # the title and stray values: no body at all
        kept = []
    doc.text = "\n".join(kept)

    _fill_fields(doc, fields, tags, before, url, text if not fields["published"] else None)
    if doc.doc_no is None:
        doc.doc_no = meta.doc_no_in(doc.title) or meta.doc_no_at_start(kept[0] if kept else "")

    if findings.pinyin_scraper(doc.text):
        doc.findings.append("pinyin_gloss_scraper")
    if challenge:
        doc.findings.append("waf_challenge_not_content")
    if not kept and not challenge:
        # never chrome as a body: an empty body, and the notice's content is its attachments
        doc.findings.append("empty_body")
        if doc.attachments:
            doc.findings.append("attachment_only")
    doc.is_document = not challenge and bool(doc.text.strip() or doc.attachments)
    doc.findings = list(dict.fromkeys(doc.findings))
    return doc


def _fill_fields(
    doc: Document,
    fields: dict[str, str | None],
    tags: dict[str, str],
    before: list[str],
    url: str,
    html_text: str | None,
) -> None:
    doc.written = fields["written"]
    doc.publisher = fields["publisher"]
    doc.index_no = fields["index_no"]
    doc.doc_no = fields["doc_no"]
    doc.topic = fields["topic"]
    doc.source = fields["source"] or fields["publisher"] or meta.meta_value(tags, "source")
    if doc.source and doc.title and normalise(doc.source) == normalise(doc.title):
        doc.source = fields["publisher"]
    doc.published, doc.published_from = _published(fields, tags, before, url, html_text)


def _published(
    fields: dict[str, str | None],
    tags: dict[str, str],
    before: list[str],
    url: str,
    html_text: str | None,
) -> tuple[str | None, str | None]:
    """(发布日期, where it came from): the page's visible date (a 发布时间 label, or a line that is
    only a date before the article), then the page's ``<meta>`` (PubDate, firstpublishedtime,
    article:published_time …), then the date in the URL (TRS ``/YYYYMM/tYYYYMMDD_``,
    ``/art/YYYY/M/D/``). htmldate is the last resort, read from the page's markup (``page``);
    it is not asked when the page shows an empty date label (the page itself says it has none)."""
    if fields["published"]:
        return fields["published"], PAGE
    for seg in reversed(before[-12:]):
        published = meta.only_date(seg)
        if published:
            return published, PAGE
    published = meta.parse_date(meta.meta_value(tags, "published"))
    if published:
        return published, META
    published = meta.url_date(url)
    if published:
        return published, URL
    if html_text is not None and not _has_empty_date_label(before):
        published = _htmldate(html_text, url)
        if published:
            return published, PAGE
    return None, None


def _has_empty_date_label(before: list[str]) -> bool:
    """The page shows a 发布时间/日期 label with no value (restored or broken templates): the page
    itself says it has no date, so none is guessed."""
    lab = meta.meta_lex().label
    for seg in before[-60:]:
        seg = meta.normalise_label_space(seg)
        m = lab.match(seg)
        if m and m.lastgroup == "published" and not seg[m.end() :].strip():
            return True
    return False


def _htmldate(html_text: str, url: str) -> str | None:
    """htmldate as the last resort (it reads 发布日期：2023年3月10日 as 2023-01-01, hence last)."""
    try:
        from htmldate import find_date

        return find_date(html_text, url=url or None, original_date=True, extensive_search=False)
    except Exception:  # noqa: BLE001 - a fallback must never break extraction
        return None


def find_attachments(text: str, url: str, container: str | None = None) -> list[dict[str, str]]:
    """The attachments a page links, as :func:`extract` lists them (``{"url", "name"}``), without
    the rest of the extraction: inside the elements matching CSS ``container`` when given and
    present, else anywhere on the page. What the spider requests as attachments."""
    root = dom.parse(text)
    scopes = root.cssselect(container) if container else []
    found: dict[str, dict[str, str]] = {}
    for scope in scopes or [None]:
        where = scope if scope is not None else root
        scripts = [s.text or "" for s in where.iter("script")]
        for attachment in meta.attachments(root, scope, url, scripts):
            found.setdefault(attachment["url"], attachment)
    return list(found.values())
