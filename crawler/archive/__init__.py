"""The archive: clean text, metadata, raw WARC and attachments in a directory or S3 bucket.

``open_archive(uri)`` picks the store by URI scheme; :class:`ArchiveWriter` writes pipeline items
(spooling to local disk when the store fails); the key layout is in docs/archive-layout.md.
"""

from crawler.archive.archive import (
    Archive,
    ObjectConflictError,
    PutResult,
    VerifyReport,
    open_archive,
    store_options_from_settings,
)
from crawler.archive.stores import ArchiveConfigError, ArchiveError, StoreError, validate_uri
from crawler.archive.writer import ArchiveWriter

__all__ = [
    "Archive",
    "ArchiveConfigError",
    "ArchiveError",
    "ArchiveWriter",
    "ObjectConflictError",
    "PutResult",
    "StoreError",
    "VerifyReport",
    "open_archive",
    "store_options_from_settings",
    "validate_uri",
]
