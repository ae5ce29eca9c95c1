"""Incremental crawling: do not fetch again what the archive already holds.

:class:`IncrementalMiddleware` (a spider middleware, enabled by the portal spiders for themselves)
looks every article and attachment request a list or article page produces up in the crawler's
dedup state (:meth:`crawler.dedup.service.StateService.known`; archived attachments are recorded
there too):

* a known URL is dropped (``govcrawl/incremental/skipped``) -- or, for profiles with
  ``revisit: true``, sent as a conditional GET (``If-None-Match`` / ``If-Modified-Since`` from the
  stored record; a ``304`` answer counts as unchanged, ``govcrawl/incremental/not_modified``);
* when every document a list page links is known, the list's further pages are not requested
  (``govcrawl/incremental/pagination_stopped``): newer documents come first in a column. This
  holds only if the site's last crawl walked its columns to the end: after a crawl that did not
  finish (killed, stopped, cut by a CLOSESPIDER limit) the older pages may hold documents it never
  reached, so the next crawl pages through every column (``govcrawl/incremental/full_walk``).

:class:`ColumnLog` remembers how many documents each column listed, so a column that used to list
documents and now lists none can be reported as a warning, and whether the last crawl finished.

Settings: ``GOVCRAWL_INCREMENTAL`` (default True; False refetches everything),
``GOVCRAWL_STATE_DIR`` (where the column log lives).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.exceptions import NotConfigured

logger = logging.getLogger(__name__)

DOCUMENT_ROLES = ("article", "attachment")
PAGINATION_ROLE = "page"
LIST_ROLES = ("list", "page")


class ColumnLog:
    """How many documents each column listed at its last crawl, and whether that crawl finished
    (``<state>/columns/<site>.json``).

    :meth:`begin` marks a crawl under way before it lists anything, :meth:`save` at its end records
    whether it finished, so a crawl killed in between leaves the mark of an unfinished walk.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.counts: dict[str, int] = {}
        self.walked = False  # the last crawl finished: every column was paged to its end
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if "columns" in data:
                    self.walked = data.get("finished") is True
                    data = data["columns"]
                # else: a log of an older release, which did not record the end of the crawl
                self.counts = {str(k): int(v) for k, v in data.items()}
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                logger.warning("Ignoring unreadable column log %s: %s", path, exc)
                self.counts, self.walked = {}, False

    @classmethod
    def from_settings(cls, settings: Any, site: str) -> ColumnLog:
        state_dir = settings.get("GOVCRAWL_STATE_DIR")
        return cls(Path(state_dir) / "columns" / f"{site}.json" if state_dir else None)

    def last_count(self, column: str) -> int:
        return self.counts.get(column, 0)

    def record(self, column: str, count: int) -> None:
        # keep the last non-zero count so an empty crawl keeps warning until documents return
        if count or column not in self.counts:
            self.counts[column] = count

    def begin(self) -> None:
        """Mark a crawl under way (written at once: a kill leaves this mark)."""
        self.save(finished=False)

    def save(self, finished: bool) -> None:
        """Record the counts, and whether the crawl walked its columns to the end."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"finished": finished, "columns": self.counts},
                                  ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def conditional_headers(record: Any) -> dict[str, str]:
    """``If-None-Match`` / ``If-Modified-Since`` for a stored URL record (empty when it has
    neither an ETag nor a Last-Modified)."""
    headers = {}
    if getattr(record, "etag", None):
        headers["If-None-Match"] = record.etag
    if getattr(record, "last_modified", None):
        headers["If-Modified-Since"] = record.last_modified
    return headers


class IncrementalMiddleware:
    """Skip (or revalidate) already-archived documents; stop paging through known columns."""

    def __init__(self, crawler: Any, service: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.service = service
        self._may_stop: bool | None = None  # decided at the first list page

    def _paging_may_stop(self, spider: Any) -> bool:
        """Whether known documents may end a column's paging: only after a finished crawl."""
        if self._may_stop is None:
            columns = getattr(spider, "columns", None)
            self._may_stop = bool(getattr(columns, "walked", False))
            if not self._may_stop:
                self.stats.set_value("govcrawl/incremental/full_walk", 1)
                logger.info("The last crawl of %s did not finish (or there was none): paging "
                            "through every column, known documents are still not fetched",
                            getattr(spider, "name", "?"))
        return self._may_stop

    @classmethod
    def from_crawler(cls, crawler: Any) -> IncrementalMiddleware:
        if not crawler.settings.getbool("GOVCRAWL_INCREMENTAL", True):
            raise NotConfigured("GOVCRAWL_INCREMENTAL is off")
        from crawler.dedup.service import StateService

        return cls(crawler, StateService.of(crawler))  # the state is what makes it incremental

    def _known(self, url: str) -> Any:
        try:
            return self.service.known(url)
        except Exception as exc:  # a state failure must not stop the crawl: fetch it again
            self.stats.inc_value("govcrawl/errors/incremental_state")
            # a server away (Redis restart) is logged once by the scheduler / dedup stage
            away = isinstance(exc, self.service.state.unavailable)
            logger.log(logging.DEBUG if away else logging.WARNING,
                       "Dedup state lookup failed for %s: %s", url, exc)
            return None

    def _filter(self, response: Any, results: list[Any], spider: Any) -> Iterator[Any]:
        revisit = bool(getattr(getattr(spider, "profile", None), "revisit", False))
        from_list = response.meta.get("govcrawl_role") in LIST_ROLES
        documents = known = 0
        kept: list[Any] = []
        for obj in results:
            role = obj.meta.get("govcrawl_role") if isinstance(obj, Request) else None
            if role not in DOCUMENT_ROLES:
                kept.append(obj)
                continue
            documents += 1
            record = self._known(obj.url)
            if record is None:
                kept.append(obj)
                continue
            known += 1
            headers = conditional_headers(record)
            if revisit and role == "article" and headers:
                obj.headers.update(headers)
                obj.meta["handle_httpstatus_list"] = [304, *obj.meta.get(
                    "handle_httpstatus_list", getattr(spider, "handle_httpstatus_list", []))]
                obj.meta["govcrawl_known"] = True
                self.stats.inc_value("govcrawl/incremental/revalidated")
                kept.append(obj)
            else:
                self.stats.inc_value("govcrawl/incremental/skipped")
        stop_paging = (from_list and documents > 0 and known == documents
                       and self._paging_may_stop(spider))
        for obj in kept:
            if (stop_paging and isinstance(obj, Request)
                    and obj.meta.get("govcrawl_role") == PAGINATION_ROLE):
                self.stats.inc_value("govcrawl/incremental/pagination_stopped")
                logger.info("All %d documents on %s are known: not paging further",
                            documents, response.url)
                continue
            yield obj

    def process_spider_output(self, response: Any, result: Iterable[Any]) -> Iterator[Any]:
        yield from self._filter(response, list(result), self.crawler.spider)

    async def process_spider_output_async(self, response: Any,
                                          result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        items = [obj async for obj in result]
        for obj in self._filter(response, items, self.crawler.spider):
            yield obj
