"""The generic profile-driven spider for 政务公开 columns.

One :class:`PortalSpider` subclass per profile (generated in ``spiders/__init__.py``) crawls
column (list) pages -> their next pages -> articles (stitching multi-page articles into one
item) -> attachments, and yields :class:`~crawler.items.PageItem` objects. It schedules, keeps
the budgets (``max_pages``, ``max_depth``, traps, off-site links) and stitches articles; what a
page links to is read by the page object of the profile's ``cms`` family (:mod:`crawler.pages`).
Skipping already-archived articles is :class:`crawler.incremental.IncrementalMiddleware`, which
this spider enables for itself.

Request roles (``request.meta["govcrawl_role"]``): ``list`` (a column's first page), ``page`` (a
further page of a column), ``article``, ``article_page`` (page 2..n of an article),
``attachment`` (linked from a list page), ``article_attachment`` (linked from an article: fetched
before the article item is yielded, so the article's ``meta.json`` records each one's stored key
and sha256).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scrapy import Request, Spider, signals
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler import urls
from crawler.attachments import is_attachment, sha256_hex
from crawler.challenges import CHALLENGE_STATUSES, detect_challenge, record_challenge
from crawler.incremental import ColumnLog
from crawler.items import ARTICLE, ATTACHMENT, PageItem, ResponseRecord, crawl_id
from crawler.listing import Link
from crawler.pages import GenericPage, PageOptions, page_for
from crawler.profiles import Profile
from crawler.runner import CrawlStopped
from spiders.fetch import describe_failure

logger = logging.getLogger(__name__)

#: scrapy-playwright's handler, used for ``render: true`` profiles behind the cassette handler.
PLAYWRIGHT_HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "executable_path": "/usr/bin/chromium",
    "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"],
}
#: At most this many extra pages are stitched onto one article.
MAX_ARTICLE_PAGES = 50

ROLE = "govcrawl_role"
LIST_ROLES = ("list", "page")
GONE_STATUSES = (404, 410)  # a list page past a column's end (pagers often promise too many)
#: An attachment fetched as part of its article (before the article item is yielded).
ARTICLE_ATTACHMENT = "article_attachment"
#: Scheduling priority by role: what a page already fetched needs (an article's further pages and
#: attachments, then the articles and attachments a list page links to) goes before more list
#: pages, so the queue never holds every article of the site at once
#: (TRS ``createPageHTML`` names all pages of a column at once) and finished documents come early.
ROLE_PRIORITY = {"article_page": 2, ARTICLE_ATTACHMENT: 2, "article": 1, "attachment": 1}


class CrawlLog:
    """JSON lines of what a crawl did (``GOVCRAWL_CRAWL_LOG=path``), without bodies: one
    ``{"event": "response", ...}`` per response and one ``{"event": "item", ...}`` per item that
    passed the pipelines. For debugging profiles, and for tests."""

    def __init__(self, path: str, site: str) -> None:
        self.path = path
        self.site = site

    def _write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def response_received(self, response: Response, request: Request, **kwargs: Any) -> None:
        self._write({"event": "response", "site": self.site, "url": response.url,
                     "status": response.status, "role": request.meta.get(ROLE)})

    def item_scraped(self, item: Any, **kwargs: Any) -> None:
        if isinstance(item, PageItem):
            self._write({"event": "item", "site": item.site, "kind": item.kind, "url": item.url,
                         "more_pages": [p.url for p in item.more_pages],
                         "found_on": item.found_on, "link_text": item.link_text,
                         "status": item.response.status, "bytes": len(item.response.body),
                         "crawl_id": item.crawl_id})


@dataclass
class ArticleState:
    """One article being assembled: its first page, its further pages (fetched and to go) and
    its attachments (to fetch, and the sha256 of each one stored), all before it is yielded."""

    first: ResponseRecord
    found_on: str | None = None
    link_text: str | None = None
    todo: list[str] = field(default_factory=list)  # URLs of its further pages, in order
    pages: list[ResponseRecord] = field(default_factory=list)  # further pages fetched
    attachments: list[Link] = field(default_factory=list)  # attachment links still to fetch
    files: dict[str, str] = field(default_factory=dict)  # canonical attachment URL -> sha256


class PortalSpider(Spider):
    """Crawl one portal's 政务公开 columns as its :class:`~crawler.profiles.Profile` describes."""

    profile: ClassVar[Profile]
    handle_httpstatus_list = CHALLENGE_STATUSES

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        middlewares = dict(settings.getdict("SPIDER_MIDDLEWARES"))
        middlewares.setdefault("crawler.incremental.IncrementalMiddleware", 560)
        settings.set("SPIDER_MIDDLEWARES", middlewares, priority="spider")
        # pagination chains are bounded by max_pages and link depth by max_depth (below),
        # so Scrapy's DEPTH_LIMIT (which counts every hop) must not cut them short
        settings.set("DEPTH_LIMIT", 0, priority="spider")
        if cls.profile.render:
            settings.set("GOVCRAWL_NETWORK_HANDLER", PLAYWRIGHT_HANDLER, priority="spider")
            settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", PLAYWRIGHT_LAUNCH_OPTIONS, priority="spider")
            settings.set("PLAYWRIGHT_BROWSER_TYPE", "chromium", priority="spider")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_domains = list(self.profile.allowed_domains)
        self.start_urls = list(self.profile.start_urls)
        self.trap_guard = urls.TrapGuard()
        self.page_options = PageOptions.from_profile(self.profile)
        self.list_pages = 0
        self.columns: ColumnLog | None = None
        self.crawl_id = ""
        self.attachment_files: dict[str, str] = {}  # attachment URL -> sha256, this crawl
        self.started: set[str] = set()  # start URLs requested
        self.failed_starts: dict[str, str] = {}  # start URL -> why it gave no list page
        self.lists_failed = 0  # list pages that gave nothing (a 404 ends a column, not counted)
        self.error: str | None = None  # set when the site gave nothing at all (exit code 1)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> PortalSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.columns = ColumnLog.from_settings(crawler.settings, spider.name)
        crawler.signals.connect(spider.columns.begin, signal=signals.spider_opened)
        spider.crawl_id = crawl_id(crawler)
        log_path = crawler.settings.get("GOVCRAWL_CRAWL_LOG")
        if log_path:
            spider.crawl_log = CrawlLog(log_path, spider.name)
            crawler.signals.connect(spider.crawl_log.item_scraped, signal=signals.item_scraped)
            crawler.signals.connect(spider.crawl_log.response_received,
                                    signal=signals.response_received)
        return spider

    def closed(self, reason: str) -> None:
        if self.started and set(self.failed_starts) >= self.started:
            why = sorted(set(self.failed_starts.values()))
            self.error = (f"site down: all {len(self.started)} start URL(s) failed "
                          f"({'; '.join(why)})")
        if self.columns is not None:
            # a column cut short (crawl stopped, a list page that failed) must be walked again
            self.columns.save(finished=reason == "finished" and not self.lists_failed)
        if self.trap_guard.dropped:
            self.crawler.stats.set_value("govcrawl/trap_urls_dropped", self.trap_guard.dropped)

    # --- requests ---------------------------------------------------------------------------

    def _meta(self, role: str, **extra: Any) -> dict[str, Any]:
        meta = {ROLE: role, **extra}
        if self.profile.render and role in LIST_ROLES:
            meta["playwright"] = True
            meta["playwright_page_goto_kwargs"] = {"wait_until": "networkidle"}
        return meta

    def _request(self, url: str, callback: Any, role: str, **meta: Any) -> Request | None:
        """A request for ``url`` (canonicalised), or None when it is off-site, a trap or over
        budget."""
        url = urls.canonicalize(url)
        if not urls.host_allowed(url, self.profile.allowed_domains):
            return None
        if not self.trap_guard.allow(url):
            return None
        if role in LIST_ROLES:
            if self.list_pages >= self.profile.max_pages:
                self.crawler.stats.inc_value("govcrawl/max_pages_reached")
                return None
            self.list_pages += 1
        return Request(url, callback=callback, errback=self.on_error,
                       meta=self._meta(role, **meta), priority=ROLE_PRIORITY.get(role, 0))

    async def start(self) -> AsyncIterator[Request]:
        for url in self.profile.start_urls:
            request = self._request(url, self.parse_list, "list", govcrawl_column=url,
                                    govcrawl_depth=0)
            if request is not None:
                self.started.add(request.url)
                yield request

    def _start_failed(self, request: Request, why: str) -> None:
        url = (request.meta.get("redirect_urls") or [request.url])[0]  # as first requested
        if url in self.started:
            self.failed_starts[url] = why

    # --- checks -----------------------------------------------------------------------------

    def _challenged(self, response: Response) -> bool:
        """Count and log an anti-bot challenge page; True when ``response`` is one."""
        vendor = detect_challenge(response.status, response.headers, response.body)
        if vendor:
            record_challenge(self.crawler.stats, vendor, response.status, response.url)
            self._start_failed(response.request, f"anti-bot challenge ({vendor})")
            self._list_failed(response.request)
            return True
        if response.status in CHALLENGE_STATUSES:
            self.crawler.stats.inc_value(f"govcrawl/http_status/{response.status}")
            logger.warning("HTTP %s for %s: skipped", response.status, response.url)
            self._start_failed(response.request, f"HTTP {response.status}")
            self._list_failed(response.request)
            return True
        return False

    def _list_failed(self, request: Request) -> None:
        """A list page gave nothing: this crawl did not walk its column to the end."""
        if request.meta.get(ROLE) in LIST_ROLES:
            self.lists_failed += 1

    def on_error(self, failure: Failure) -> Iterator[PageItem | Request]:
        request = failure.request
        meta = request.meta
        if failure.check(CrawlStopped):  # not sent: the next run fetches it
            return
        kind = type(failure.value).__name__
        if not failure.check(HttpError):  # HTTP errors are counted by status already
            self.crawler.stats.inc_value(f"govcrawl/errors/{kind}")
        logger.info("Download failed (%s) for %s", kind, request.url)
        self._start_failed(request, describe_failure(failure))
        if not (failure.check(HttpError) and failure.value.response.status in GONE_STATUSES):
            self._list_failed(request)  # a missing page only ends its column
        article = meta.get("govcrawl_article")
        if article is not None and meta.get(ROLE) == "article_page":
            # keep the pages we have rather than lose the whole article
            article.todo.clear()
        if article is not None:
            yield from self._continue_article(article)

    # --- list pages -------------------------------------------------------------------------

    def _page(self, response: TextResponse) -> GenericPage:
        """The page object reading ``response`` for this profile's ``cms``."""
        return page_for(response.url, response.text, self.profile.cms, self.page_options)

    def parse_list(self, response: Response) -> Iterator[Request]:
        if self._challenged(response) or not isinstance(response, TextResponse):
            return
        meta = response.meta
        role = meta.get(ROLE, "list")
        column = meta.get("govcrawl_column", response.url)
        depth = meta.get("govcrawl_depth", 0)
        page = self._page(response)
        links = page.links()
        articles = attachments = 0
        sublists: list[Link] = []
        for link in links:
            url = urls.canonicalize(link.url)
            if not urls.host_allowed(url, self.profile.allowed_domains) or url == response.url:
                continue
            if is_attachment(url):
                request = self._request(url, self.parse_attachment, "attachment",
                                        found_on=response.url, link_text=link.text)
                attachments += request is not None
            elif self.profile.is_article(url):
                request = self._request(url, self.parse_article, "article",
                                        found_on=response.url, link_text=link.text,
                                        govcrawl_column=column)
                articles += request is not None
            else:
                if self.profile.is_list(url) and depth < self.profile.max_depth:
                    sublists.append(link)
                continue
            if request is not None:
                yield request
        self.crawler.stats.inc_value("govcrawl/list_pages")
        if role == "list":
            self._column_seen(column, articles + attachments)
        for link in sublists:
            request = self._request(link.url, self.parse_list, "list",
                                    govcrawl_column=urls.canonicalize(link.url),
                                    govcrawl_depth=depth + 1)
            if request is not None:
                yield request
        if articles + attachments == 0 and role != "list":
            return  # an empty further page ends the column
        if self.profile.pagination == "none":
            return
        for url in page.next_pages():
            request = self._request(url, self.parse_list, "page", govcrawl_column=column,
                                    govcrawl_depth=depth)
            if request is not None:
                yield request

    def _column_seen(self, column: str, count: int) -> None:
        if count:
            if self.columns is not None:
                self.columns.record(column, count)
            return
        stats = self.crawler.stats
        stats.inc_value("govcrawl/empty_columns")
        before = self.columns.last_count(column) if self.columns is not None else 0
        if before:
            logger.warning("Column %s listed %d documents last time and lists none now "
                           "(site changed or blocked?)", column, before)
        else:
            logger.info("Column %s lists no documents", column)
        if self.columns is not None:
            self.columns.record(column, 0)

    # --- articles ---------------------------------------------------------------------------

    def _article_item(self, article: ArticleState) -> PageItem:
        return PageItem(site=self.name, kind=ARTICLE, response=article.first,
                        more_pages=list(article.pages), crawl_id=self.crawl_id,
                        found_on=article.found_on, link_text=article.link_text,
                        attachment_files=dict(article.files))

    def parse_article(self, response: Response) -> Iterator[PageItem | Request]:
        if response.status == 304:
            self.crawler.stats.inc_value("govcrawl/incremental/not_modified")
            return
        if self._challenged(response):
            return
        if not isinstance(response, TextResponse):
            yield self._attachment_item(response)
            return
        page = self._page(response)
        article = ArticleState(first=ResponseRecord.from_response(response),
                               found_on=response.meta.get("found_on"),
                               link_text=response.meta.get("link_text"),
                               todo=page.more_pages()[:MAX_ARTICLE_PAGES],
                               attachments=page.attachments())
        yield from self._continue_article(article)

    def _continue_article(self, article: ArticleState) -> Iterator[PageItem | Request]:
        """Fetch the article's next page, else its next attachment, else yield the article: its
        attachments are stored before it, so its meta.json can name their keys."""
        while article.todo:
            url = article.todo.pop(0)
            request = self._request(url, self.parse_article_page, "article_page",
                                    govcrawl_article=article)
            if request is not None:
                request.dont_filter = True  # a page belongs to this article even if seen
                yield request
                return
        page_url = article.first.url
        while article.attachments:
            link = article.attachments.pop(0)
            url = urls.canonicalize(link.url)
            if url in article.files:
                continue
            if url in self.attachment_files:  # stored already by this crawl
                article.files[url] = self.attachment_files[url]
                continue
            if len(url) > self.settings.getint("URLLENGTH_LIMIT", 2083):
                continue  # Scrapy's UrlLengthMiddleware would drop it and stall the article
            request = self._request(url, self.parse_article_attachment, ARTICLE_ATTACHMENT,
                                    govcrawl_article=article, found_on=page_url,
                                    link_text=link.text)
            if request is not None:
                request.dont_filter = True  # its sha256 is needed even if another page had it
                yield request
                return
        yield self._article_item(article)

    def parse_article_page(self, response: Response) -> Iterator[PageItem | Request]:
        article: ArticleState = response.meta["govcrawl_article"]
        if not self._challenged(response) and isinstance(response, TextResponse):
            article.pages.append(ResponseRecord.from_response(response))
            article.attachments.extend(self._page(response).attachments())
            self.crawler.stats.inc_value("govcrawl/article_pages_stitched")
        yield from self._continue_article(article)

    def parse_article_attachment(self, response: Response) -> Iterator[PageItem | Request]:
        """An attachment of the article being assembled: yield it, note its sha256, go on."""
        article: ArticleState = response.meta["govcrawl_article"]
        requested = (response.meta.get("redirect_urls") or [response.url])[0]
        for item in self.parse_attachment(response):
            sha = sha256_hex(item.response.body)
            article.files[requested] = self.attachment_files[requested] = sha
            yield item
        yield from self._continue_article(article)

    # --- attachments ------------------------------------------------------------------------

    def _attachment_item(self, response: Response) -> PageItem:
        return PageItem(site=self.name, kind=ATTACHMENT,
                        response=ResponseRecord.from_response(response), crawl_id=self.crawl_id,
                        found_on=response.meta.get("found_on"),
                        link_text=response.meta.get("link_text"))

    def parse_attachment(self, response: Response) -> Iterator[PageItem]:
        if response.status == 304:
            self.crawler.stats.inc_value("govcrawl/incremental/not_modified")
            return
        if isinstance(response, TextResponse) and self._challenged(response):
            return
        if response.status >= 300:
            return
        yield self._attachment_item(response)
