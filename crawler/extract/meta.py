"""Page metadata: title, dates (发布/成文), source, publisher, 索引号, 文号, 主题分类,
attachments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from lxml.html import HtmlElement

from crawler.extract.filelinks import find_file_links
from crawler.extract.lexicon import alternation, load, rx, rx_any
from crawler.extract.lines import is_spammy, normalise

FIELDS = ("published", "written", "source", "publisher", "index_no", "doc_no", "topic")
_WS = re.compile(r"\s+")
_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "○": 0,
    "О": 0,
    "O": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_DATE = re.compile(r"((?:19|20)\d{2})\s?(?:[-/.]|年)\s?(\d{1,2})\s?(?:[-/.]|月)\s?(\d{1,2})(?!\d)")
_CN_DATE = re.compile(
    r"([〇零○一二三四五六七八九]{4})\s?年\s?([一二三四五六七八九十]{1,3})\s?月\s?"
    r"([一二三四五六七八九十]{1,3})\s?日"
)
_ONLY_DATE = re.compile(
    r"^[\[(（【]?\s?(?:19|20)\d{2}\s?[-/.年]\s?\d{1,2}\s?[-/.月]\s?\d{1,2}日?"
    r"(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?\s?[\])）】]?$"
)


def _cn_number(s: str) -> int:
    if len(s) == 4 and "十" not in s:  # a year, digit by digit
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    if "十" in s:
        head, _, tail = s.partition("十")
        return (_CN_DIGITS[head] if head else 1) * 10 + (_CN_DIGITS[tail] if tail else 0)
    return _CN_DIGITS[s]


def _valid(y: int, m: int, d: int) -> str | None:
    if 1990 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31:
        return f"{y:04d}-{m:02d}-{d:02d}"
    return None


def parse_date(text: str | None) -> str | None:
    """First date in ``text`` as YYYY-MM-DD: 2023-03-10, 2023/3/10, 2023.03.10, 2023年3月10日,
    二〇二三年三月十日."""
    if not text:
        return None
    m = _DATE.search(text)
    if m:
        return _valid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _CN_DATE.search(text)
    if m:
        try:
            return _valid(*(_cn_number(g) for g in m.groups()))
        except KeyError:
            return None
    return None


@dataclass(frozen=True)
class _MetaLex:
    label: re.Pattern[str]  # any known label, group name = field
    index_shape: re.Pattern[str]
    doc_shape: re.Pattern[str]
    url_dates: re.Pattern[str]
    title_seps: re.Pattern[str]
    site_segment: re.Pattern[str]
    meta_tags: dict[str, list[str]]


@cache
def meta_lex() -> _MetaLex:
    lex = load("metadata")
    groups = [f"(?P<{name}>{alternation(words)})" for name, words in lex["labels"].items()] + [
        f"(?P<stop>{alternation(lex['stop_labels'])})"
    ]
    label = rx(r"(?<![\u4e00-\u9fff])(?:" + "|".join(groups) + r")\s?(?:[:：]|$)")
    return _MetaLex(
        label=label,
        index_shape=rx(lex["index_no_shape"]),
        doc_shape=rx(lex["doc_no_shape"]),
        url_dates=rx_any(lex["url_dates"]),
        title_seps=rx(lex["title_separators"]),
        site_segment=rx(lex["site_segment"]),
        meta_tags={k: [x.lower() for x in v] for k, v in lex["meta_tags"].items()},
    )


def labelled_fields(segments: list[str]) -> dict[str, str]:
    """Parse ``label：value`` pairs from text pieces in page order. A label alone in its
    piece takes the next piece as its value (info tables with label and value in separate
    cells). Empty values are skipped; the first non-empty value of each field wins."""
    lex = meta_lex()
    out: dict[str, str] = {}
    n = len(segments)
    for i, seg in enumerate(segments):
        seg = normalise_label_space(seg)
        matches = list(lex.label.finditer(seg))
        if not matches:
            continue
        for j, m in enumerate(matches):
            name = m.lastgroup
            end = matches[j + 1].start() if j + 1 < len(matches) else len(seg)
            value = seg[m.end() : end].strip(" :：|｜/\t")
            if not value and j == len(matches) - 1 and i + 1 < n:
                nxt = normalise_label_space(segments[i + 1])
                if not lex.label.match(nxt):
                    value = nxt.strip()
            if name and name != "stop" and value and name not in out:
                out[name] = value[:120]
    return out


def normalise_label_space(text: str) -> str:
    return _WS.sub(" ", text.replace("\u3000", " ")).strip()


def field_values(labelled: dict[str, str]) -> dict[str, str | None]:
    """Clean the raw labelled values into Document fields."""
    lex = meta_lex()
    out: dict[str, str | None] = dict.fromkeys(FIELDS)
    issued = parse_date(labelled.get("issued"))
    out["published"] = parse_date(labelled.get("published")) or issued
    out["written"] = parse_date(labelled.get("written")) or issued
    for name in ("source", "publisher", "topic"):
        v = labelled.get(name)
        if v and parse_date(v) != v:
            v = _WS.split(v.strip())[0] if name != "topic" else v.strip()
            out[name] = v or None
    idx = labelled.get("index_no")
    if idx:
        idx = idx.replace(" ", "")
        out["index_no"] = idx if lex.index_shape.match(idx) else None
    doc = labelled.get("doc_no")
    if doc:
        m = lex.doc_shape.search(doc)
        out["doc_no"] = _WS.sub("", m.group(0)) if m else None
    return out


def doc_no_in(text: str | None) -> str | None:
    """A 文号 shape (XX发〔2024〕7号) in a string."""
    if not text:
        return None
    m = meta_lex().doc_shape.search(text)
    return _WS.sub("", m.group(0)) if m else None


def doc_no_at_start(line: str) -> str | None:
    """A 文号 that opens the first line of a 公文 body (道人社〔2017〕32号 关于…)."""
    m = meta_lex().doc_shape.match(line.strip())
    return _WS.sub("", m.group(0)) if m else None


def url_date(url: str) -> str | None:
    m = meta_lex().url_dates.search(url or "")
    if not m:
        return None
    y, mo, d = (g for g in m.groups() if g is not None)
    return _valid(int(y), int(mo), int(d))


def only_date(text: str) -> str | None:
    """The date if ``text`` is nothing but a date (and time)."""
    return parse_date(text) if _ONLY_DATE.match(text.strip()) else None


# --- <meta> and title
# ------------------------------------------------------------------------------


def meta_tags(root: HtmlElement) -> dict[str, str]:
    """<meta name=... content=...> (and property=) of the page, names as written, first wins."""
    out: dict[str, str] = {}
    for m in root.iter("meta"):
        name = m.get("name") or m.get("property") or m.get("http-equiv")
        content = m.get("content")
        if name and content is not None and name not in out:
            out[name.strip()] = content.strip()
    return out


def meta_value(tags: dict[str, str], field_name: str) -> str | None:
    names = meta_lex().meta_tags.get(field_name, [])
    low = {k.lower(): v for k, v in tags.items()}
    for n in names:
        v = low.get(n)
        if v:
            return v
    return None


def kept_meta(tags: dict[str, str]) -> dict[str, str]:
    keep = set(meta_lex().meta_tags["keep"])
    return {k: v for k, v in tags.items() if k.lower() in keep and v}


def _clean(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def title_core(title: str, site_name: str | None) -> str:
    """<title> without leading/trailing site-name segments (标题_XX市人民政府, XX网 | 标题)."""
    lex = meta_lex()
    parts: list[tuple[int, int]] = []
    pos = 0
    for m in lex.title_seps.finditer(title):
        parts.append((pos, m.start()))
        pos = m.end()
    parts.append((pos, len(title)))
    parts = [(a, b) for a, b in parts if title[a:b].strip()]
    site = normalise(site_name or "")

    def is_site(a: int, b: int) -> bool:
        seg = title[a:b].strip()
        return bool(seg) and (
            normalise(seg) == site or (len(seg) <= 20 and bool(lex.site_segment.search(seg)))
        )

    while len(parts) > 1 and is_site(*parts[-1]):
        parts.pop()
    while len(parts) > 1 and is_site(*parts[0]):
        parts.pop(0)
    if not parts:
        return ""
    return title[parts[0][0] : parts[-1][1]].strip()


def headings(root: HtmlElement, container: HtmlElement | None) -> list[str]:
    """Texts of h1–h3 and *title* blocks, in page order (those inside the container included)."""
    out = []
    for el in root.iter("h1", "h2", "h3", "h4", "div", "p", "span", "td", "font", "strong"):
        if el.tag in ("h1", "h2", "h3", "h4") or "title" in (el.get("class") or "").lower():
            t = _clean(el.text_content())
            if 4 <= len(t) <= 200:
                out.append(t)
    return out


def choose_title(tags: dict[str, str], title_tag: str, heads: list[str]) -> tuple[str | None, bool]:
    """(title, hijacked): ArticleTitle meta > a heading matching the <title> core > the core.
    ``hijacked`` is True when the <title> is spam while a clean title exists."""
    site = tags.get("SiteName") or tags.get("sitename")
    raw = _clean(title_tag)
    spam_title = bool(raw) and is_spammy(raw)
    meta_title = _clean(meta_value(tags, "title"))
    if meta_title and not is_spammy(meta_title) and normalise(meta_title) != normalise(site or ""):
        return meta_title, spam_title
    core = "" if spam_title else title_core(raw, site)
    ncore = normalise(core)
    if ncore:
        exact = [h for h in heads if normalise(h) == ncore]
        inside = [h for h in heads if len(h) >= 6 and ncore.startswith(normalise(h))]
        longer = [
            h for h in heads if normalise(h).startswith(ncore) and len(h) <= 1.5 * len(core) + 10
        ]
        best = (
            exact[0]
            if exact
            else max(inside, key=len)
            if inside
            else min(longer, key=len)
            if longer
            else None
        )
        if best:
            return best, spam_title
        if normalise(core) != normalise(site or "") and not meta_lex().site_segment.search(core):
            return core, spam_title
    clean_heads = [h for h in heads if not is_spammy(h) and normalise(h) != normalise(site or "")]
    if clean_heads:
        return max(clean_heads[:8], key=len), spam_title
    return (core or None), spam_title


# --- attachments
# ------------------------------------------------------------------------------------

def attachments(
    root: HtmlElement, scope: HtmlElement | None, base_url: str, scripts: list[str]
) -> list[dict[str, str]]:
    """Links to attachment files (the policy's types) in the article area, with their visible
    names, wherever the page puts them: hrefs, URL attributes of ``javascript:`` links, script
    handlers, HTML written by inline scripts (:mod:`crawler.extract.filelinks`)."""
    return find_file_links(scope if scope is not None else root, scripts, base_url)
