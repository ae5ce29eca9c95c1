"""The attachment policy: which linked files are archived as attachments, and where they are kept.

One table (``crawler/tables/attachments.yaml``) lists the file types; the spiders request exactly
those links (:func:`is_attachment`), extraction lists exactly those in a document's
``attachments`` (:func:`extension_alternation`), and the archive stores each one's body once under
:func:`stored_key` (``attachments/<sha256[:2]>/<sha256>/body``), which ``meta.json`` records.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from typing import Any

from crawler.tables import load_table
from crawler.urls import canonicalize, url_extension


@cache
def extensions() -> frozenset[str]:
    """File extensions (lower case, no dot) of the attachment types."""
    return frozenset(str(ext).lower() for ext in load_table("attachments")["extensions"])


@cache
def extension_alternation() -> str:
    """The extensions as a regex alternation, longest first (``pptx|docx|...|et``)."""
    return "|".join(sorted(map(re.escape, extensions()), key=lambda e: (-len(e), e)))


def is_attachment(url: str) -> bool:
    """True when the URL's path ends in an attachment type's extension."""
    return url_extension(url) in extensions()


def sha256_hex(body: bytes) -> str:
    """The attachment's content hash: its identity in the archive."""
    return hashlib.sha256(body).hexdigest()


def stored_key(sha256: str) -> str:
    """The archive key of an attachment's body (relative to the archive prefix)."""
    from crawler.archive.layout import attachment_body_key

    return attachment_body_key(sha256)


def stored_attachments(listed: list[dict[str, str]], files: Mapping[str, str]
                       ) -> list[dict[str, Any]]:
    """A document's attachments as ``meta.json`` records them: each one extraction listed, with
    the ``sha256`` and archive ``key`` of its stored body (``files``: URL -> sha256 of what the
    spider fetched), both None when it was not fetched (off-site, failed, not found)."""
    out: list[dict[str, Any]] = []
    for att in listed:
        url = att.get("url", "")
        sha = files.get(url)
        if sha is None:
            with suppress(ValueError):
                sha = files.get(canonicalize(url))
        out.append({**att, "sha256": sha, "key": stored_key(sha) if sha else None})
    return out
