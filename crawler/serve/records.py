"""Reading raw captures back from the archive: one WARC record by its (key, offset, length)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from warcio.archiveiterator import ArchiveIterator

from crawler.archive import layout
from crawler.archive.archive import Archive
from crawler.archive.stores import LocalStore, S3Store

_WARC_KEY = re.compile(r"^crawls/[A-Za-z0-9._-]+/warc/[A-Za-z0-9._-]+\.warc\.gz$")
MAX_RECORD = 64 * 1024 * 1024


@dataclass
class Capture:
    url: str
    date: str
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes


def read_range(archive: Archive, key: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of an archived object (a ranged read where possible)."""
    layout.check_key(key)
    store = archive.store
    if isinstance(store, LocalStore):
        path = (store.root / key).resolve()
        if not path.is_relative_to(store.root):
            raise KeyError(key)
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            raise KeyError(key) from None
    if isinstance(store, S3Store):
        try:
            obj = store.client.get_object(Bucket=store.bucket, Key=store._k(key),
                                          Range=f"bytes={offset}-{offset + length - 1}")
        except Exception as exc:  # botocore's errors: the capture is not there
            raise KeyError(key) from exc
        return obj["Body"].read()
    return archive.get(key)[offset:offset + length]


def read_capture(archive: Archive, location: dict) -> Capture:
    """The response record at a ``{"key", "offset", "length"}`` location from ``meta.json``."""
    key = str(location.get("key") or "")
    offset, length = int(location.get("offset") or 0), int(location.get("length") or 0)
    if not _WARC_KEY.match(key) or ".." in key or offset < 0 or not 0 < length <= MAX_RECORD:
        raise KeyError(key)
    data = read_range(archive, key, offset, length)
    for record in ArchiveIterator(io.BytesIO(data)):
        if record.rec_type not in ("response", "revisit"):
            continue
        http = record.http_headers
        return Capture(
            url=record.rec_headers.get_header("WARC-Target-URI") or "",
            date=record.rec_headers.get_header("WARC-Date") or "",
            status_line=http.statusline if http else "",
            headers=list(http.headers) if http else [],
            body=record.content_stream().read(),
        )
    raise KeyError(key)
