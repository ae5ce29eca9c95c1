"""vcrpy cassettes inside Scrapy: a download handler that replays and records them.

vcrpy patches ``http.client``, ``requests``, ``httpx``... but not Twisted, so Scrapy's own
downloads never reach it. :class:`CassetteDownloadHandler` plugs vcrpy's
:class:`~vcr.cassette.Cassette` (its matchers, record modes, YAML serializer and persister) in as
Scrapy's http/https download handler instead. The files it reads and writes are ordinary vcrpy
cassettes: ``vcr.use_cassette(path)`` + ``requests`` replays what Scrapy recorded, and Scrapy
replays what ``requests`` recorded.

Settings (see ``crawler/settings.py``):

* ``GOVCRAWL_CASSETTE`` -- one cassette file for every request, or
* ``GOVCRAWL_CASSETTE_DIR`` -- one cassette per spider, ``<dir>/<spider.name>.yaml``;
* ``GOVCRAWL_RECORD_MODE`` -- vcrpy's record mode: ``none`` (replay only), ``once``,
  ``new_episodes``, ``all``;
* ``GOVCRAWL_NETWORK_HANDLER`` -- class path of the handler that really downloads (default
  ``HTTP11DownloadHandler``; scrapy-playwright's handler works too).

With neither cassette setting, :meth:`CassetteDownloadHandler.from_crawler` returns the network
handler itself, so an ordinary crawl pays nothing for this module.

Cassettes written here are *plain*: bodies are stored decoded, without ``Content-Encoding``, with a
``Content-Length`` that fits. Replayed responses pass through :func:`vcr.filters.decode_response`,
so cassettes recorded by vcrpy + requests (which keep ``Content-Encoding: gzip`` next to a body
that is already decoded) replay too.

:func:`write_cassette` builds a cassette from saved pages (:class:`Interaction`).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcr.cassette import Cassette
from vcr.filters import decode_response, remove_headers
from vcr.persisters.filesystem import FilesystemPersister
from vcr.record_mode import validate_record_mode
from vcr.request import Request as VcrRequest
from vcr.serialize import serialize
from vcr.serializers import yamlserializer
from w3lib.url import safe_url_string

__all__ = [
    "CassetteMiss",
    "Interaction",
    "load_cassette",
    "write_cassette",
]

logger = logging.getLogger(__name__)

DEFAULT_NETWORK_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
#: vcrpy's default matching: headers are ignored, so conditional GETs still match.
MATCH_ON = ("method", "uri")
#: Request headers never written to a cassette.
PRIVATE_REQUEST_HEADERS = ("Cookie", "Authorization", "Proxy-Authorization")
#: Flag set on every replayed response (``response.flags``).
REPLAY_FLAG = "cassette"


class CassetteMiss(Exception):
    """A request has no recorded response and the record mode forbids recording it."""

    def __init__(self, url: str, cassette_path: str | os.PathLike[str], record_mode: str = "none"):
        self.url = url
        self.cassette_path = str(cassette_path)
        self.record_mode = str(getattr(record_mode, "value", record_mode))
        super().__init__(
            f"No recorded response for {url} in cassette {self.cassette_path} "
            f"(record mode {self.record_mode!r} forbids recording it)"
        )


# --- vcrpy plumbing -------------------------------------------------------------------------


class AtomicFilesystemPersister(FilesystemPersister):
    """vcrpy's filesystem persister, but a save never leaves a half-written cassette behind."""

    @staticmethod
    def save_cassette(cassette_path, cassette_dict, serializer) -> None:  # noqa: ANN001 (vcrpy API)
        data = serialize(cassette_dict, serializer)
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _header_text(value: bytes | str) -> str:
    # http.client (and so vcrpy + requests) reads header bytes as latin-1: keep the same convention.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _header_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # written by hand (write_cassette) with non-latin-1 text
        return value.encode("utf-8")


def _header_lists(headers: dict[str, Any]) -> dict[str, list[str]]:
    return {
        _header_text(k): [_header_text(v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
        for k, vs in headers.items()
    }


def plain_response(response: dict[str, Any]) -> dict[str, Any]:
    """A vcrpy response dict with its body decoded, and headers that say so.

    ``decode_response`` decompresses gzip/deflate/br (leaving an already decoded body as it is)
    and drops ``Content-Encoding``; ``Transfer-Encoding`` goes too and ``Content-Length`` is set
    to the body's length. An encoding vcrpy cannot decode (e.g. zstd) is kept with its header, so
    it still round-trips.
    """
    response = decode_response(response)
    headers = {k: v for k, v in response["headers"].items() if k.lower() != "transfer-encoding"}
    body = response["body"]["string"] or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    response["body"]["string"] = body
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    headers["Content-Length"] = [str(len(body))]
    response["headers"] = headers
    return response


# --- building cassettes from saved pages ----------------------------------------------------


@dataclass
class Interaction:
    """One request/response pair to put in a cassette (``headers`` are the response headers).

    ``body`` is the page as a browser receives it after content decoding. The URL is made safe the
    way Scrapy makes request URLs safe (non-ASCII percent-encoded), so it matches Scrapy's requests.
    Remember ``/robots.txt`` when the crawl obeys robots.txt: a missing one is a cassette miss.
    """

    url: str
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    request_headers: dict[str, str] = field(default_factory=dict)
    reason: str = "OK"

    def to_vcr(self) -> tuple[VcrRequest, dict[str, Any]]:
        """This pair as vcrpy's (Request, response dict)."""
        request = VcrRequest(self.method.upper(), safe_url_string(self.url), None,
                             dict(self.request_headers))
        response = {
            "status": {"code": int(self.status), "message": self.reason},
            "headers": _header_lists(self.headers),
            "body": {"string": bytes(self.body)},
        }
        return request, plain_response(response)


def write_cassette(path: str | os.PathLike[str], interactions: Iterable[Interaction]) -> None:
    """Write ``interactions`` as a vcrpy YAML cassette at ``path`` (replacing it, atomically)."""
    pairs = [i.to_vcr() for i in interactions]
    AtomicFilesystemPersister.save_cassette(
        path,
        {"requests": [r for r, _ in pairs], "responses": [resp for _, resp in pairs]},
        serializer=yamlserializer,
    )


def load_cassette(path: str | os.PathLike[str], record_mode: str = "none") -> Cassette:
    """Open a cassette the way the download handler does (vcrpy ``Cassette``, repeats allowed)."""
    return Cassette.load(
        path=str(path),
        record_mode=validate_record_mode(record_mode),
        match_on=tuple(_MATCHERS[m] for m in MATCH_ON),
        persister=AtomicFilesystemPersister,
        serializer=yamlserializer,
        allow_playback_repeats=True,
        before_record_request=functools.partial(
            remove_headers, headers_to_remove=PRIVATE_REQUEST_HEADERS
        ),
    )


def _vcr_matchers() -> dict[str, Any]:
    from vcr import matchers

    return {"method": matchers.method, "uri": matchers.uri}


_MATCHERS = _vcr_matchers()
