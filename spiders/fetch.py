"""``govcrawl fetch URL``: one URL through the same components as a crawl."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.items import ARTICLE, PageItem, ResponseRecord, crawl_id

HTML_TYPES = ("text/html", "application/xhtml+xml")


class FetchError(Exception):
    """Why a fetch produced no document, as one line for the user."""


def describe_failure(failure: Failure) -> str:
    """One human line for a download failure (no traceback)."""
    exc = failure.value
    if isinstance(exc, HttpError):
        response = exc.response
        return f"HTTP {response.status} for {response.url}"
    name = type(exc).__name__
    if "DNSLookupError" in name:
        return "host name could not be resolved"
    if "ConnectionRefused" in name:
        return "connection refused"
    if "Timeout" in name:
        return "timed out"
    message = str(exc).strip() or name
    return message.splitlines()[0]


def looks_like_html(response: Response) -> bool:
    """True when the response is an HTML page (by Content-Type, or by sniffing when it has none)."""
    content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
    if content_type:
        return any(t in content_type for t in HTML_TYPES)
    head = response.body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


class FetchSpider(Spider):
    """Fetch one URL and hand it to the pipelines as an article."""

    name = "fetch"
    # One user-requested URL, like a browser visit: robots.txt rules are for crawling.
    custom_settings = {"ROBOTSTXT_OBEY": False, "RETRY_TIMES": 1}

    def __init__(self, url: str, *args: Any, site: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.url = url
        self.site = site  # the profile the URL belongs to; None: file it under its host name
        self.error: str | None = None

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.url, callback=self.parse, errback=self.on_error, dont_filter=True)

    def parse(self, response: Response, **kwargs: Any) -> Any:
        if not looks_like_html(response):
            content_type = (response.headers.get("Content-Type") or b"?").decode("latin-1")
            self.error = f"not an HTML page ({content_type.split(';')[0]}): {response.url}"
            return
        yield PageItem(
            site=self.site or urlsplit(response.url).hostname or "unknown",
            kind=ARTICLE,
            response=ResponseRecord.from_response(response),
            crawl_id=crawl_id(self.crawler),
        )

    def on_error(self, failure: Failure) -> None:
        self.error = describe_failure(failure)
