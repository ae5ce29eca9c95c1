"""Attachment links wherever a page puts them, with their visible names.

A plain ``<a href="x.pdf">``; an ``<a href="javascript:;">`` (or ``#``, or no href) whose URL is
in another attribute (UEditor ``_href``, ``data-url``, TRS ``oldsrc`` ...); a script handler
(``onclick="download('x.pdf')"``, ``window.open('…')``, a ``javascript:`` href) on any element;
a file shown in the page (``<embed src>``, ``<iframe src>`` of a viewer, ``<object data>``); the
HTML an inline script writes (``document.write('<a href=…>')``). The attributes, calls, elements
and writers are data: ``crawler/tables/attachment_links.yaml``; a URL counts only when the
attachment policy (``crawler/tables/attachments.yaml``) calls it an attachment: its path ends in
one of the types, or a download endpoint names such a file in a query parameter
(``downfile.jsp?filename=``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from crawler import urls
from crawler.attachments import attachment_url, named_files
from crawler.tables import load_table

_WS = re.compile(r"\s+")
#: A JavaScript string literal, single or double quoted (escapes kept, one line).
_JS_STRING = re.compile(r"'((?:[^'\\\n]|\\.)*)'|\"((?:[^\"\\\n]|\\.)*)\"")
_JS_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_JS_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "b": "", "f": "", "v": "", "0": ""}


@dataclass(frozen=True)
class _UrlAttribute:
    name: str
    needs_slash: bool = False


@dataclass(frozen=True)
class _Rules:
    placeholder_prefixes: tuple[str, ...]  # lower case
    placeholder_empty: bool  # an empty href is a placeholder
    attributes: tuple[_UrlAttribute, ...]
    handlers: tuple[str, ...]
    embedded: tuple[tuple[str, str], ...]  # (tag, attribute holding the URL)
    calls: tuple[re.Pattern[str], ...]
    writers: re.Pattern[str]


@cache
def rules() -> _Rules:
    """The table ``attachment_links.yaml``, compiled."""
    table = load_table("attachment_links")
    return _Rules(
        placeholder_prefixes=tuple(str(p).lower() for p in table["placeholder_hrefs"] if p),
        placeholder_empty="" in table["placeholder_hrefs"],
        attributes=tuple(_UrlAttribute(str(a["name"]), bool(a.get("needs_slash")))
                         for a in table["url_attributes"]),
        handlers=tuple(str(h).lower() for h in table["handler_attributes"]),
        embedded=tuple((str(e["tag"]).lower(), str(e["attribute"])) for e in table["embedded"]),
        calls=tuple(re.compile(p, re.I) for p in table["script_calls"]),
        writers=re.compile("|".join(f"(?:{w})" for w in table["html_writers"]), re.I),
    )


def file_url(value: str) -> str | None:
    """The URL to fetch when ``value`` (absolute or relative) links an attachment, else None:
    the attachment policy decides (:func:`crawler.attachments.attachment_url`)."""
    value = value.strip()
    if not value or value[:11].lower().startswith(("javascript:", "mailto:")):
        return None
    return attachment_url(value)


def _is_placeholder(href: str | None) -> bool:
    """True for an href that does not say where its file is (table ``placeholder_hrefs``: the
    empty entry matches an empty href, the others are prefixes)."""
    if href is None:
        return True
    href = href.strip()
    if not href:
        return rules().placeholder_empty
    return href.lower().startswith(rules().placeholder_prefixes)


def _text(value: str | None) -> str:
    return _WS.sub(" ", value or "").strip()


def _handler_urls(code: str) -> Iterator[str]:
    """File URLs passed to the table's calls in a piece of script (a handler, a javascript:)."""
    for call in rules().calls:
        for m in call.finditer(code):
            url = file_url(_unescape(m.group("url")))
            if url:
                yield url


def _anchor_url(a: HtmlElement) -> str | None:
    """The file URL of an ``<a>``: its href, else (placeholder href) the table's attributes,
    else the calls in its handlers / javascript: href."""
    href = a.get("href")
    if not _is_placeholder(href):
        return file_url(href) if href else None
    names = set(a.keys())
    for attribute in rules().attributes:
        if attribute.name in names:
            value = a.get(attribute.name, "").strip()
            url = file_url(value) if not attribute.needs_slash or "/" in value else None
            if url:
                return url
    return next(_element_handler_urls(a, names), None)


def _element_handler_urls(el: HtmlElement, names: set[str]) -> Iterator[str]:
    for name in rules().handlers:
        if name in names:
            yield from _handler_urls(el.get(name, ""))
    href = (el.get("href") or "").strip()
    if href[:11].lower().startswith("javascript:"):
        yield from _handler_urls(href)


def file_name(url: str) -> str:
    """The file's name in its URL: the last path segment, or a download endpoint's file-name
    parameter (``downfile.jsp?filename=x.pdf`` -> ``x.pdf``)."""
    named = named_files(url)
    return named[0].rsplit("/", 1)[-1] if named else \
        url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _name(el: HtmlElement, url: str) -> str:
    """What the page shows for the link: its text, else its title, else the file's name."""
    name = _text(el.text_content())
    title = _text(el.get("title"))
    if not name and title and title != url:
        name = title
    return name or file_name(url)


@cache
def _handler_values() -> etree.XPath:
    """The handler attributes (table ``handler_attributes``) of every element under a scope."""
    return etree.XPath(" | ".join(f"descendant-or-self::*/@{h}" for h in rules().handlers))


def _element_links(scope: HtmlElement) -> Iterator[tuple[str, str]]:
    found: list[tuple[HtmlElement, str]] = []
    for a in scope.iter("a"):
        url = _anchor_url(a)
        if url:
            found.append((a, url))
    others: list[tuple[HtmlElement, str]] = []
    if rules().handlers:
        for value in _handler_values()(scope):
            element = value.getparent()
            if element.tag != "a":  # an <a>'s handlers are read by _anchor_url
                others.extend((element, url) for url in _handler_urls(value))
    for tag, attribute in rules().embedded:
        for element in scope.iter(tag):
            url = file_url(element.get(attribute) or "")
            if url:
                others.append((element, url))
    if others:  # rare: put them in page order among the anchors
        order = {el: i for i, el in enumerate(scope.iter())}
        found = sorted(found + others, key=lambda pair: order[pair[0]])
    for element, url in found:
        yield url, _name(element, url)


def _unescape(literal: str) -> str:
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "ux" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        return _JS_SIMPLE.get(esc, esc)

    return _JS_ESCAPE.sub(one, literal) if "\\" in literal else literal


def written_html(code: str) -> str | None:
    """The HTML an inline script writes (its string literals, unescaped, joined in order), or
    None when the script writes no HTML with a link."""
    if not rules().writers.search(code) or "<a" not in code.lower():
        return None
    html = "".join(_unescape(m.group(1) if m.group(1) is not None else m.group(2))
                   for m in _JS_STRING.finditer(code))
    return html if "<a" in html.lower() else None


def _script_links(scripts: Iterable[str]) -> Iterator[tuple[str, str]]:
    for code in scripts:
        html = written_html(code)
        if html is None:
            continue
        try:
            fragment = lxml.html.fragment_fromstring(html, create_parent="div")
        except (etree.ParserError, ValueError):
            continue
        yield from _element_links(fragment)


def find_file_links(scope: HtmlElement, scripts: Iterable[str],
                    base_url: str) -> list[dict[str, str]]:
    """The attachment links in ``scope`` and written by ``scripts``, in page order (element
    links first), each once: ``{"url": absolute URL, "name": visible name}``."""
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for url, name in (*_element_links(scope), *_script_links(scripts)):
        absolute = urls.join(base_url, url.strip()) if base_url else url.strip()
        if absolute is None or absolute in seen:  # None: a malformed URL (urls.join)
            continue
        seen.add(absolute)
        out.append({"url": absolute, "name": name})
    return out
