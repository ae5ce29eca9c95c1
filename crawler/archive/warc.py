"""Raw HTTP exchanges written to WARC (warcio), one growing segment file per crawl at a time.

Record ids and dates are derived from the exchange (crawl id, URL, fetch time, body digest), so
the same items give the same bytes whichever store the segment is uploaded to.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import zlib
from collections.abc import Iterable
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from typing import Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.archive.layout import warc_key
from crawler.items import ResponseRecord

#: Revisit profile for a page whose *extracted text* did not change since the last crawl.
UNCHANGED_TEXT_PROFILE = "https://govcrawl.github.io/warc/revisit/unchanged-text"
_NS = uuid.UUID("6f1d7c2e-8b1c-4d8e-9a52-3c1f0e7d2b11")
#: Headers describing the transfer, not the (already decoded) body we store.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


#: gzip level of WARC records. warcio's own writer uses 9: on benchmarks/crawl_throughput.py's
#: pages (23 KB) 0.51 ms per page against 0.41 ms at 6, for the same size (ratio 0.345 both).
GZIP_LEVEL = 6


class _GzipMembers:
    """What warcio's ``WARCWriter(gzip=True)`` writes -- one gzip member per record, ended by the
    writer's ``flush()`` after each record -- at :data:`GZIP_LEVEL`."""

    def __init__(self, fh: Any, level: int = GZIP_LEVEL):
        self.fh, self.level = fh, level
        self._z: Any = None

    def write(self, data: bytes) -> None:
        if self._z is None:
            self._z = zlib.compressobj(self.level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        self.fh.write(self._z.compress(data))

    def flush(self) -> None:
        if self._z is not None:
            self.fh.write(self._z.flush())
            self._z = None
        self.fh.flush()


def _warc_writer(fh: Any) -> WARCWriter:
    """A warcio writer of gzip-per-record WARC at :data:`GZIP_LEVEL` into ``fh``."""
    return WARCWriter(_GzipMembers(fh), gzip=False)


def _record_id(*parts: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(_NS, '|'.join(parts))}>"


def _sha1_b32(data: bytes) -> str:
    import base64

    return "sha1:" + base64.b32encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


def _response_headers(rec: ResponseRecord, raw: bool = False) -> StatusAndHeaders:
    """HTTP headers as they describe the body we have: transfer headers kept as X-Archive-Orig-*.

    ``raw``: the body is as received (still content-encoded), so Content-Encoding stays."""
    renamed = _TRANSFER_HEADERS - {"content-encoding"} if raw else _TRANSFER_HEADERS
    headers: list[tuple[str, str]] = []
    for name, value in rec.headers:
        if name.lower() in renamed:
            headers.append((f"X-Archive-Orig-{name}", value))
        else:
            headers.append((name, value))
    headers.append(("Content-Length", str(len(rec.body))))
    try:
        reason = HTTPStatus(rec.status).phrase
    except ValueError:
        reason = "Unknown"
    return StatusAndHeaders(f"{rec.status} {reason}", headers, protocol="HTTP/1.1")


def _request_headers(rec: ResponseRecord) -> StatusAndHeaders:
    from urllib.parse import urlsplit

    parts = urlsplit(rec.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = list(rec.request_headers)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    return StatusAndHeaders(f"{rec.method} {target}", headers, protocol="HTTP/1.1")


class WarcSegments:
    """Appends records to ``<directory>/<name>.warc.gz`` files, rotating at ``max_bytes``.

    Finished segments are handed back as ``(key, path)`` pairs for upload. Thread-safe.
    """

    def __init__(self, directory: Path, crawl_id: str, *, max_bytes: int = 100 * 2**20,
                 software: str = "govcrawl"):
        self.directory, self.crawl_id = Path(directory), crawl_id
        self.max_bytes, self.software = max_bytes, software
        self._lock = threading.Lock()
        self._seq = 0
        self._fh: Any = None
        self._key = ""
        self._path: Path | None = None
        self._finished: list[tuple[str, Path]] = []

    # -- segments --------------------------------------------------------------------------
    def _open(self, date: str) -> None:
        stamp = "".join(c for c in date if c.isdigit())[:14]
        key = warc_key(self.crawl_id, self._seq)
        key = key.replace(f"-{self._seq:05d}.warc.gz", f"-{stamp}-{self._seq:05d}.warc.gz")
        self._seq += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key, self._path = key, self.directory / key.rsplit("/", 1)[1]
        self._fh = open(self._path, "wb")  # noqa: SIM115 - closed in _close()
        writer = _warc_writer(self._fh)
        info = BytesIO()
        for name, value in (("software", self.software), ("format", "WARC File Format 1.0"),
                            ("isPartOf", self.crawl_id)):
            info.write(f"{name}: {value}\r\n".encode())
        length = info.tell()
        info.seek(0)
        record = writer.create_warc_record(
            "", "warcinfo", payload=info, length=length,
            warc_content_type="application/warc-fields",
            warc_headers_dict={
                "WARC-Record-ID": _record_id("warcinfo", key),
                "WARC-Date": date,
                "WARC-Filename": self._path.name,
            },
        )
        writer.write_record(record)

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._finished.append((self._key, self._path))  # type: ignore[arg-type]
            self._fh = None

    def _writer(self, date: str) -> WARCWriter:
        if self._fh is not None and self._fh.tell() >= self.max_bytes:
            self._close()
        if self._fh is None:
            self._open(date)
        return _warc_writer(self._fh)

    def take_finished(self) -> list[tuple[str, Path]]:
        """Segments closed by rotation since the last call."""
        with self._lock:
            done, self._finished = self._finished, []
            return done

    def finish(self) -> list[tuple[str, Path]]:
        """Close the open segment; return every finished segment not yet taken."""
        with self._lock:
            self._close()
            done, self._finished = self._finished, []
            return done

    # -- records ---------------------------------------------------------------------------
    def write_exchange(self, rec: ResponseRecord, *, raw: bool = False) -> dict[str, Any]:
        """Write request + response records; return where the response record is.

        ``raw``: ``rec.body`` is the body as downloaded (before content decoding)."""
        digest = _sha1_b32(rec.body)
        date = rec.fetched_at
        resp_id = _record_id(self.crawl_id, "response", rec.url, date, digest)
        with self._lock:
            writer = self._writer(date)
            offset = self._fh.tell()
            response = writer.create_warc_record(
                rec.url, "response", payload=BytesIO(rec.body), length=len(rec.body),
                http_headers=_response_headers(rec, raw),
                warc_headers_dict={"WARC-Record-ID": resp_id, "WARC-Date": date},
            )
            writer.write_record(response)
            length = self._fh.tell() - offset
            request = writer.create_warc_record(
                rec.url, "request", http_headers=_request_headers(rec),
                warc_headers_dict={
                    "WARC-Record-ID": _record_id(self.crawl_id, "request", rec.url, date, digest),
                    "WARC-Date": date,
                    "WARC-Concurrent-To": resp_id,
                },
            )
            writer.write_record(request)
            return {"key": self._key, "offset": offset, "length": length}

    def write_revisit(self, rec: ResponseRecord, *, profile: str = UNCHANGED_TEXT_PROFILE,
                      refers_to: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """Write a revisit record (HTTP headers only) for an exchange not archived again."""
        digest = _sha1_b32(rec.body)
        date = rec.fetched_at
        headers = {
            "WARC-Record-ID": _record_id(self.crawl_id, "revisit", rec.url, date, digest),
            "WARC-Date": date,
            "WARC-Profile": profile,
            "WARC-Payload-Digest": digest,
            **dict(refers_to),
        }
        with self._lock:
            writer = self._writer(date)
            offset = self._fh.tell()
            record = writer.create_warc_record(
                rec.url, "revisit", http_headers=_response_headers(rec), warc_headers_dict=headers
            )
            writer.write_record(record)
            return {"key": self._key, "offset": offset, "length": self._fh.tell() - offset}

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
