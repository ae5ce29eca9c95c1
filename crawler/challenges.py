"""Anti-bot / WAF challenge pages: the one detector, used by the spiders and by ``extract()``.

:func:`detect_challenge` names the vendor whose challenge a response is (``ruishu``,
``jiasule``, ``cloudflare`` ...) from one table, ``crawler/tables/challenges.yaml``;
:func:`record_challenge` counts it (``govcrawl/challenge_pages`` and
``govcrawl/challenge_pages/<vendor>``), so a page is counted the same whichever path saw it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import Any

from crawler import htmltree
from crawler.tables import load_table

logger = logging.getLogger(__name__)

#: Elements whose text a visitor does not see.
_INVISIBLE = frozenset({"script", "style", "template"})


@dataclass(frozen=True)
class _Vendor:
    name: str
    statuses: frozenset[int]
    body: tuple[bytes, ...]  # literal markers, UTF-8 and GB18030 encoded
    body_text: tuple[str, ...]  # the same markers, for pages given as text
    patterns: tuple[re.Pattern[str], ...]
    cookies: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]

    def matches(self, head: bytes | str, cookies: str, headers: Any) -> bool:
        if isinstance(head, bytes):
            if any(n in head for n in self.body):
                return True
            text = head.decode("latin-1") if self.patterns else ""
        else:
            if any(n in head for n in self.body_text):
                return True
            text = head
        if any(p.search(text) for p in self.patterns):
            return True
        if any(c in cookies for c in self.cookies):
            return True
        return any(value in v.lower() for name, value in self.headers
                   for v in header_values(headers, name))


def _encodings(marker: str) -> set[bytes]:
    out = {marker.encode("utf-8")}
    with suppress(UnicodeEncodeError):
        out.add(marker.encode("gb18030"))
    return out


@cache
def _table() -> tuple[tuple[_Vendor, ...], int, int]:
    table = load_table("challenges")
    vendors = []
    for name, rule in table["vendors"].items():
        markers = [str(m) for m in rule.get("body") or ()]
        vendors.append(_Vendor(
            name=name,
            statuses=frozenset(int(s) for s in rule.get("statuses") or ()),
            body=tuple(n for m in markers for n in sorted(_encodings(m))),
            body_text=tuple(markers),
            patterns=tuple(re.compile(p) for p in rule.get("patterns") or ()),
            cookies=tuple(str(c) for c in rule.get("cookies") or ()),
            headers=tuple((str(k).lower(), str(v).lower())
                          for k, v in (rule.get("headers") or {}).items()),
        ))
    return tuple(vendors), int(table["scan_bytes"]), int(table["max_text"])


#: Statuses a challenge page comes with (the spiders' callbacks receive them).
CHALLENGE_STATUSES: list[int] = [int(s) for s in load_table("challenges")["statuses"]]


def header_values(headers: Any, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive) in Scrapy ``Headers``, a mapping, or a
    list of ``(name, value)`` pairs; bytes are decoded as Latin-1."""
    if not headers:
        return []
    name = name.lower()

    def text(v: Any) -> str:
        return v.decode("latin-1") if isinstance(v, bytes) else str(v)

    if hasattr(headers, "getlist"):  # scrapy.http.Headers: case-insensitive already
        return [text(v) for v in headers.getlist(name)]
    pairs: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    out: list[str] = []
    for key, value in pairs:
        if text(key).lower() == name:
            values = value if isinstance(value, list | tuple) else [value]
            out.extend(text(v) for v in values)
    return out


def visible_text_length(root: Any) -> int:
    """Characters of visible text (no whitespace, no script/style) in the page's ``<body>``."""
    body = root.find(".//body") if root.tag != "body" else root
    if body is None:
        body = root
    count = 0
    for el in body.iter():
        if not isinstance(el.tag, str):  # comments, processing instructions
            if el.tail:
                count += len("".join(el.tail.split()))
            continue
        if el.tag not in _INVISIBLE and el.text:
            count += len("".join(el.text.split()))
        if el is not body and el.tail:
            count += len("".join(el.tail.split()))
    return count


def _parse(body: bytes | str, headers: Any) -> Any:
    """The page's tree, as extraction builds it (decoded as a browser would, then parsed)."""
    if isinstance(body, bytes):
        from crawler.extract.decode import decode_html  # lazy: extraction imports this module

        content_type = header_values(headers, "content-type")
        body, _ = decode_html(body, content_type[0] if content_type else None)
    return htmltree.parse(body)


def detect_challenge(status: int | None, headers: Any, body: bytes | str,
                     root: Any = None) -> str | None:
    """The vendor whose challenge this response is, or None for an ordinary page.

    ``status`` None means unknown (a saved page); ``root`` is the page's parsed lxml tree when the
    caller has one (otherwise the body is parsed, only when a marker matched)."""
    vendors, scan_bytes, max_text = _table()
    head = body[:scan_bytes]
    cookies = ";".join(header_values(headers, "set-cookie"))
    for vendor in vendors:
        if status is not None and vendor.statuses and status not in vendor.statuses:
            continue
        if not vendor.matches(head, cookies, headers):
            continue
        if root is None:
            root = _parse(body, headers)
        if root is not None and visible_text_length(root) > max_text:
            return None  # the page shows its content: protected, not challenged
        return vendor.name
    return None


def record_challenge(stats: Any, vendor: str, status: int | None, url: str) -> None:
    """Count and log a challenge page (the same stats whichever component found it)."""
    stats.inc_value("govcrawl/challenge_pages")
    stats.inc_value(f"govcrawl/challenge_pages/{vendor}")
    logger.warning("Anti-bot challenge page (%s, HTTP %s) at %s: not archived",
                   vendor, status if status is not None else "?", url)
