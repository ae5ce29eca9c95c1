"""The one HTML parse function of the project: pages become lxml trees as a browser builds them.

Extraction (:mod:`crawler.extract`), the page objects the spiders read pages with
(:mod:`crawler.pages`, :mod:`crawler.listing`) and challenge detection all parse here, so a page
is one tree everywhere. ``parse(text)`` takes decoded text (decoding stays in
:func:`crawler.extract.decode_html`).
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from lxml import html as lxml_html
from lxml.html import HtmlElement
from parsel import Selector
from selectolax.lexbor import LexborHTMLParser

_MARKUP_START = re.compile(r"<(?:!doctype|html|head|body|meta|title|!--)", re.I)

#: Characters lxml's element API does not take (C0 controls but tab/newline/CR/FF, lone
#: surrogates, non-characters): dropped when a tree is copied node by node.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_NAME = re.compile(r"^[A-Za-z_:][\w.:\-]*$")
_LXML = lxml_html.HTMLParser()
_EMPTY_PAGE = "<html><head></head><body></body></html>"


def parse(text: str) -> HtmlElement:
    """Parse once, as a browser does, into the lxml tree the rest of extraction, trafilatura and
    the page objects work on.

    The HTML5 tree-building algorithm (lexbor, through selectolax) decides where every node goes:
    content after a stray ``</html>`` or ``</body>`` is re-parented into ``<body>``, table content
    foster-parented, misnested tags adopted. That tree is handed to lxml as its serialisation (well
    formed, so libxml2 keeps its structure) read with ``huge_tree`` (libxml2 keeps 2,048 levels
    instead of 256); a tree nested deeper still is copied node by node. Text before the first
    markup (crawler logs, stray bytes) is not the page."""
    m = _MARKUP_START.search(text, 0, 65536)
    if m and m.start() and text[: m.start()].strip():
        text = text[m.start() :]
    tree = LexborHTMLParser(text)
    parser = lxml_html.HTMLParser(huge_tree=True)  # one per call: its error log is read below
    try:
        root = lxml_html.document_fromstring(tree.html or _EMPTY_PAGE, parser=parser)
    except (etree.ParserError, ValueError):
        return lxml_html.document_fromstring(_EMPTY_PAGE)
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        return _copy_tree(tree.root)  # deeper than libxml2 goes: node by node
    return root


def _safe_attributes(attributes: dict[str, str | None]) -> dict[str, str]:
    return {k: _NOT_XML.sub("", v or "") for k, v in attributes.items() if _ATTR_NAME.match(k)}


def _copy_tree(html: Any) -> HtmlElement:
    """An lxml copy of a lexbor ``<html>`` node, built node by node (no depth limit, no
    recursion). Comments are not copied."""
    root = _LXML.makeelement("html", _safe_attributes(html.attributes))
    todo = [(html.child, root)]
    while todo:
        node, parent = todo.pop()
        last = None
        while node is not None:
            tag = node.tag
            if tag == "-text":
                text = _NOT_XML.sub("", node.text_content or "")
                if last is None:
                    parent.text = (parent.text or "") + text
                else:
                    last.tail = (last.tail or "") + text
            elif tag and tag[0] not in "-#!":
                attributes = _safe_attributes(node.attributes)
                try:
                    el = etree.SubElement(parent, tag, attributes)
                except ValueError:  # a tag name lxml does not take (svg:rect, 1a …)
                    el = etree.SubElement(parent, "span", attributes)
                last = el
                if node.child is not None:
                    todo.append((node.child, el))
            node = node.next
    return root


def selector(text: str) -> Selector:
    """A parsel :class:`~parsel.Selector` (CSS/XPath) over :func:`parse`'s tree of ``text``."""
    return Selector(root=parse(text), type="html")
