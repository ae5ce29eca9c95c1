"""Building vcrpy cassettes from saved pages: test and build tooling, not the crawler's.

Tests write the cassettes they replay with :func:`write_cassette`; ``cassettes/build.py`` builds
the bundled offline cassettes with it. The crawler only replays and records
(:mod:`crawler.cassette`), through the same persister and the same *plain* response form, so a
cassette written here replays exactly as one the crawler recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vcr.request import Request as VcrRequest
from vcr.serializers import yamlserializer
from w3lib.url import safe_url_string

from crawler.cassette import AtomicFilesystemPersister, plain_response

__all__ = ["Interaction", "write_cassette"]


def _header_text(value: bytes | str) -> str:
    # http.client (and so vcrpy + requests) reads header bytes as latin-1: the same convention.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _header_lists(headers: dict[str, Any]) -> dict[str, list[str]]:
    return {
        _header_text(k): [_header_text(v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
        for k, vs in headers.items()
    }


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
