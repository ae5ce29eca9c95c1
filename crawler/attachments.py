"""The attachment policy: which linked files are archived as attachments, and where they are kept.

One table (``crawler/tables/attachments.yaml``) lists the file types and the query parameters
download endpoints name files in; the spiders request exactly those links (:func:`is_attachment`),
extraction lists exactly those in a document's ``attachments`` (:func:`attachment_url`, used by
:mod:`crawler.extract.filelinks`), the boilerplate lexicon recognises "附件：x.pdf" lines by
:func:`extension_alternation`, and the archive stores each one's body once under
:func:`stored_key` (``attachments/<sha256[:2]>/<sha256>/body``), which ``meta.json`` records.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crawler import urls
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


@cache
def _file_name_parameters() -> frozenset[str]:
    return frozenset(str(p).lower() for p in load_table("attachments")["file_name_parameters"])


def _has_extension(name: str) -> bool:
    head, dot, ext = name.rpartition(".")
    return bool(dot and head) and "/" not in ext and ext.lower() in extensions()


def named_files(url: str) -> list[str]:
    """Values of the table's file-name parameters in ``url``'s query with an attachment type."""
    try:
        query = urlsplit(url).query
    except ValueError:  # a malformed URL names no file
        return []
    if not query:
        return []
    names = _file_name_parameters()
    return [value.strip() for key, value in parse_qsl(query, keep_blank_values=False)
            if key.lower() in names and _has_extension(value.strip().split("?", 1)[0])]


def is_attachment(url: str) -> bool:
    """True when the URL's path ends in an attachment type's extension, or when it is a download
    endpoint whose file-name parameter (``downfile.jsp?filename=x.pdf``) names such a file."""
    if url_extension(url) in extensions():
        return True
    return any("/" not in value for value in named_files(url))


def attachment_url(url: str) -> str | None:
    """The URL to fetch for a link to an attachment, or None when it links none: the URL itself
    (:func:`is_attachment`), or the file a viewer page is given as a path
    (``/pdfjs/web/viewer.html?file=/upload/x.pdf`` -> ``/upload/x.pdf``)."""
    if is_attachment(url):
        return url
    for value in named_files(url):
        if "/" in value and (file_url := urls.join(url, value)):
            return file_url
    return None


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
