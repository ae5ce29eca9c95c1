"""DOM-level work on one lxml tree: parse, hidden-spam removal, article container, text walks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from lxml.html import HtmlElement

from crawler.extract.lexicon import load, rx_any
from crawler.extract.lines import SPAM, classify_line, is_spammy, spam_verdict
from crawler.htmltree import parse
from crawler.urls import host_of

__all__ = ["parse"]  # the one parse function (crawler/htmltree.py), re-exported

_WS = re.compile(r"\s+")
#: A known strong container wins over a generic one holding at most 1/STRONG_SHARE times its text.
STRONG_SHARE = 0.2
#: A hidden block with this many links to this many non-government hosts is a link farm.
LINK_FARM_LINKS, LINK_FARM_HOSTS = 10, 5
#: Elements that start a new line of text.
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tfoot",
        "tr",
        "ul",
        "ucapcontent",
        "title",
        "marquee",
    ]
)


@dataclass(frozen=True)
class _DomLex:
    strong: frozenset[str]
    weak: frozenset[str]
    container_tags: frozenset[str]
    drop_tags: frozenset[str]
    hidden_classes: frozenset[str]
    exempt_classes: frozenset[str]
    exempt_roles: frozenset[str]
    hidden_style: re.Pattern[str]
    chrome: frozenset[str]


@cache
def dom_lex() -> _DomLex:
    lex = load("dom")
    low = lambda xs: frozenset(x.lower() for x in xs)  # noqa: E731
    return _DomLex(
        strong=low(lex["containers"]["strong"]),
        weak=low(lex["containers"]["weak"]),
        container_tags=low(lex["containers"]["tags"]),
        drop_tags=low(lex["drop_tags"]),
        hidden_classes=low(lex["hidden_classes"]),
        exempt_classes=low(lex["hidden_exempt_classes"]),
        exempt_roles=low(lex["hidden_exempt_roles"]),
        hidden_style=rx_any(lex["hidden_style"]),
        chrome=low(lex["chrome_tokens"]),
    )


def tokens(el: HtmlElement) -> set[str]:
    """Lower-cased class tokens and id of an element."""
    out = set((el.get("class") or "").lower().split())
    ident = el.get("id")
    if ident:
        out.add(ident.lower())
    return out


def _marquee_hidden(el: HtmlElement) -> bool:
    def small(v: str | None) -> bool:
        return bool(v) and v.strip().rstrip("px").isdigit() and int(v.strip().rstrip("px")) <= 5

    amount = (el.get("scrollamount") or "").strip()
    return (
        small(el.get("width"))
        or small(el.get("height"))
        or (amount.isdigit() and int(amount) >= 100)
    )


def is_hidden(el: HtmlElement) -> bool:
    """Hidden or near-invisible by its own markup (inline style, hidden attribute/class, tiny
    marquee)."""
    lex = dom_lex()
    if el.get("hidden") is not None or el.get("aria-hidden") == "true" and el.get("role"):
        return True
    style = el.get("style")
    if style and lex.hidden_style.search(style):
        return True
    if el.tag == "marquee" and _marquee_hidden(el):
        return True
    return bool(tokens(el) & lex.hidden_classes)


def is_exempt(el: HtmlElement) -> bool:
    """Hidden for a legitimate reason: accessibility text, tab panes, menus."""
    lex = dom_lex()
    return (
        bool(tokens(el) & lex.exempt_classes) or (el.get("role") or "").lower() in lex.exempt_roles
    )


def node_text(el: HtmlElement) -> str:
    """Visible-ish text of a subtree (no script/style), whitespace collapsed."""
    drop = dom_lex().drop_tags
    parts = []
    for node in el.iter():
        if not isinstance(node.tag, str):
            if node.tail:
                parts.append(node.tail)
            continue
        if node.tag in drop:
            if node is not el and node.tail:
                parts.append(node.tail)
            continue
        if node.text:
            parts.append(node.text)
        if node is not el and node.tail:
            parts.append(node.tail)
    return _WS.sub(" ", " ".join(parts)).strip()


@dataclass
class DomReport:
    """What DOM cleaning removed."""

    spam: list[str] = field(default_factory=list)
    hidden: list[HtmlElement] = field(
        default_factory=list
    )  # hidden but kept (skipped when scoring)
    link_farm: bool = False


def remove_hidden_spam(root: HtmlElement, report: DomReport) -> None:
    """Remove hidden / off-screen / tiny nodes whose text or link targets are spam; keep other
    hidden
    nodes (tab panes, analytics holders, skip links) but remember them."""
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "head", "body"):
            continue
        if el.getparent() is None or not is_hidden(el):
            continue
        if is_exempt(el):
            report.hidden.append(el)
            continue
        text = node_text(el)
        hrefs = [a.get("href") or "" for a in el.iter("a")]
        if (text or hrefs) and (is_spammy(f"{text} {' '.join(hrefs)}") or _link_farm(hrefs)):
            if text:
                report.spam.append(text)
            if _link_farm(hrefs):
                report.link_farm = True
            el.drop_tree()
        else:
            report.hidden.append(el)


_GOV_HOSTS = (".gov.cn", ".政务", ".gov.mo", ".gov.hk", ".edu.cn")


def _link_farm(hrefs: list[str]) -> bool:
    """A hidden block of many links to many unrelated non-government hosts (SEO link farm, 暗链)."""
    if len(hrefs) < LINK_FARM_LINKS:
        return False
    hosts = set()
    for h in hrefs:
        host = host_of(h) if "//" in h else None  # "" for a malformed URL
        if host and not host.endswith(_GOV_HOSTS):
            hosts.add(host)
    return len(hosts) >= LINK_FARM_HOSTS


_SPAM_SCOPE_TAGS = (
    "p",
    "div",
    "li",
    "span",
    "font",
    "marquee",
    "td",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "strong",
    "b",
    "center",
    "section",
)


def remove_visible_spam(scope: HtmlElement, report: DomReport) -> None:
    """Remove visible blocks whose whole text is an injected spam line (a keyword list
    such as ``bt365备用网站_365bet开户官网``): first line, between paragraphs, marquee,
    anywhere in ``scope``.
    Prose that mentions gambling is kept (see :func:`crawler.extract.lines.spam_verdict`)."""
    for el in list(scope.iter(*_SPAM_SCOPE_TAGS)):
        if el.getparent() is None or any(
            isinstance(c.tag, str) and c.tag in BLOCK_TAGS and c.tag != "br" for c in el
        ):
            continue
        text = node_text(el)
        if 0 < len(text) <= 200 and spam_verdict(text) == SPAM:
            report.spam.append(text)
            el.drop_tree()


def _hidden_ancestry(el: HtmlElement, hidden: set[HtmlElement]) -> bool:
    node: HtmlElement | None = el
    while node is not None:
        if node in hidden:
            return True
        node = node.getparent()
    return False


def _text_stats(el: HtmlElement) -> tuple[int, int, int]:
    """(characters, characters inside links, sentence punctuation) of a subtree, no whitespace."""
    drop = dom_lex().drop_tags
    total = links = punct = 0
    for node in el.iter():
        if not isinstance(node.tag, str) or node.tag in drop:
            continue
        t = node.text
        if t:
            t = t.strip()
            n = len(t)
            total += n
            if node.tag == "a" or any(a.tag == "a" for a in node.iterancestors()):
                links += n
            punct += sum(t.count(c) for c in "。，；：、")
        tail = node.tail
        if tail and node is not el:
            tail = tail.strip()
            n = len(tail)
            total += n
            parent = node.getparent()
            if parent is not None and (
                parent.tag == "a" or any(a.tag == "a" for a in parent.iterancestors())
            ):
                links += n
            punct += sum(tail.count(c) for c in "。，；：、")
    return total, links, punct


def find_container(root: HtmlElement, hidden: list[HtmlElement]) -> HtmlElement | None:
    """The article container: known CMS container classes first, innermost that keeps the text.

    Returns None when no known container holds article-like text (the caller then lets trafilatura
    find the main content on the whole page).
    """
    lex = dom_lex()
    hidden_set = set(hidden)
    body = root.find("body")
    if body is None:
        return None
    cands: list[tuple[HtmlElement, bool]] = []
    for el in body.iter():
        if not isinstance(el.tag, str) or el.tag in lex.drop_tags:
            continue
        toks = tokens(el)
        strong = el.tag in lex.container_tags or bool(toks & lex.strong)
        if strong or toks & lex.weak:
            cands.append((el, strong))
    scored = []
    for el, strong in cands:
        if _hidden_ancestry(el, hidden_set):
            continue
        total, links, punct = _text_stats(el)
        if total == 0 or links > 0.5 * total:
            continue
        if total < 400 and _all_boilerplate(el):
            continue  # a footer or info block that reuses a container class
        scored.append((el, strong, total - links, punct))
    if not scored:
        return None

    def weight(item: tuple[HtmlElement, bool, int, int]) -> float:
        return item[2] + 5 * item[3]

    strong = [c for c in scored if c[1]]
    weak = [c for c in scored if not c[1]]
    best_strong = max(strong, key=weight) if strong else None
    best_weak = max(weak, key=weight) if weak else None
    if best_strong and (best_weak is None or best_strong[2] >= STRONG_SHARE * best_weak[2]):
        chosen = best_strong
    else:
        chosen = best_weak
    assert chosen is not None
    if chosen[2] < 2:
        return None
    # the innermost candidate inside the chosen one that still holds nearly all of its text
    for item in sorted(scored, key=lambda c: c[2]):
        if (
            item[0] is not chosen[0]
            and item[2] >= 0.9 * chosen[2]
            and (chosen[0] in item[0].iterancestors())
        ):
            chosen = item
    return chosen[0]


def _all_boilerplate(el: HtmlElement) -> bool:
    lines = block_lines(el)
    return bool(lines) and all(classify_line(x, "tail") for x in lines)


def walk_segments(root: HtmlElement, container: HtmlElement | None) -> Iterator[tuple[int, str]]:
    """Text pieces of the page in document order, as ``(region, text)``: region -1 before the
    container, 0 inside it, 1 after it (all -1 when there is no container). Script/style skipped.
    Iterative (an explicit stack): no nesting depth is too deep."""
    drop = dom_lex().drop_tags
    region = -1
    body = root.find("body")
    stack: list[tuple[HtmlElement, bool]] = [(body, False)] if body is not None else []
    while stack:
        el, closing = stack.pop()
        if closing:
            if el is container:
                region = 1
            t = el.tail.strip() if el.tail else ""
            if t:
                yield region, t
            continue
        if el is container:
            region = 0
        walk_in = isinstance(el.tag, str) and el.tag not in drop
        if walk_in and el.text:
            t = el.text.strip()
            if t:
                yield region, t
        stack.append((el, True))
        if walk_in:
            stack.extend((child, False) for child in reversed(el))


def block_lines(el: HtmlElement) -> list[str]:
    """Own text serialisation of a subtree: one line per block, cells of a row joined by a tab.
    Iterative (an explicit stack): no nesting depth is too deep."""
    drop = dom_lex().drop_tags
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        line = _WS.sub(" ", "".join(buf)).strip()
        if line:
            out.append(line)
        buf.clear()

    stack: list[tuple[HtmlElement, bool]] = [(el, False)]
    while stack:
        node, closing = stack.pop()
        tag = node.tag if isinstance(node.tag, str) else ""
        block = tag in BLOCK_TAGS and tag not in ("td", "th")
        if closing or tag in drop:
            if closing and block:
                flush()
            if node is not el and node.tail:
                buf.append(node.tail)
            continue
        if block:
            flush()
        if tag in ("td", "th"):
            buf.append("\t")
        if tag and node.text:
            buf.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    flush()
    return out
