"""The attachment policy: which linked files are archived as attachments, and where they are kept.

One table (``crawler/tables/attachments.yaml``) lists the file types; the spiders request exactly
those links (:func:`is_attachment`), extraction lists exactly those in a document's
``attachments`` (:func:`extension_alternation`), and the archive stores each one's body once under
:func:`stored_key` (``attachments/<sha256[:2]>/<sha256>/body``), which ``meta.json`` records.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from crawler.tables import load_table
from crawler.urls import url_extension


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
