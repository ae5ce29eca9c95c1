"""The crawl-scoped dedup state service: one owner of the state for each crawler.

:class:`StateService` is a Scrapy extension (``EXTENSIONS``). For its crawler it opens the dedup
state (:func:`crawler.dedup.open_state`), owns the :class:`~crawler.dedup.Deduplicator`, tracks
the items whose state is written but not yet archived, undoes the verdict of an item the archive
failed on (or a spool entry set aside as unwritable), records archived attachments as known, and
decides when to commit. The dedup pipeline and the incremental middleware get it with
:meth:`StateService.of`; nothing else opens the state during a crawl.

Sharing: the crawls of one run (``govcrawl crawl --all``: many crawlers, one process) that name
the same state (one SQLite file, or one Redis) share one open instance, as their decisions must
see each other's writes (a document reposted on two portals is one document). The run owns them:
:func:`crawler.runner.run_spiders` gives every crawler it creates the run's :class:`StateStores`
(``crawler.govcrawl_state_stores``); a crawler without one (``scrapy crawl``, tests) gets its own.
The instance is closed when the last crawl using it closes.

Commit policy (the rule: the committed state never claims a document the archive lacks). An item's
state is written when dedup decides and counts as *in flight* until the item has left the last
pipeline (``item_scraped``/``item_dropped``); an ``item_error`` undoes it. A commit on a shared
instance commits every crawl's writes, so it happens when no item of any of them is in flight:
at once when the last in-flight item settles, and, on a busy crawl where that never happens by
itself, at least every ``GOVCRAWL_STATE_COMMIT_INTERVAL`` seconds or
``GOVCRAWL_STATE_COMMIT_ITEMS`` decisions: new items then wait at the dedup stage until the ones
in flight are archived, the state is committed, and they go on. A crash loses at most that window,
whose documents the next run fetches (and archives, idempotently) again.

A state whose server is away for a while (a Redis restart: ``DedupState.unavailable`` errors)
holds items back instead of failing them: what the interrupted check had written is rolled back
(with the uncommitted window, whose documents are then seen again next time), the check is tried
again with backoff (up to ``GOVCRAWL_REDIS_RETRY_MAX`` seconds between tries) and one line is
logged per outage (none on the cluster's own Redis, whose outage the scheduler reports); a
commit that fails is kept for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from crawler.attachments import sha256_hex
from crawler.dedup.engine import DedupConfig, Deduplicator
from crawler.dedup.state import (
    DedupState,
    UrlRecord,
    attachment_record,
    open_state,
    state_key,
)
from crawler.items import ATTACHMENT, DedupResult, PageItem, utc_now

logger = logging.getLogger(__name__)


def forget(dedup: Deduplicator, verdicts: list[dict[str, Any]]) -> int:
    """Undo, in ``dedup``'s state, verdicts whose archive writes were set aside as unwritable
    (quarantined spool entries: a document's verdict, or an attachment's URL); return how many.
    Their documents are then fetched again by the next crawl."""
    for verdict in verdicts:
        if verdict.get("kind") == ATTACHMENT:
            for url in {verdict.get("url"), verdict.get("final_url")} - {None}:
                dedup.state.delete_url(str(url))
        else:
            dedup.undo(DedupResult(**{k: verdict.get(k) for k in
                                      DedupResult.__dataclass_fields__ if k in verdict}))
    return len(verdicts)


class SharedState:
    """One open state and the crawls using it; commits when none of them has an item in flight."""

    def __init__(self, state: DedupState, interval: float, max_items: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.interval, self.max_items = float(interval), max(1, int(max_items))
        self.clock = clock
        self.users = 0
        #: items (of every crawl sharing the state) whose state is written but not yet archived
        self.in_flight = 0
        #: writes since the last commit (decisions, undos, attachment records)
        self.dirty = 0
        self.commits = 0
        self.last_commit = clock()
        self._waiters: list[Deferred[None]] = []
        #: when the state's server went away (None: reachable), and how to log it
        self.away_since: float | None = None
        self.outage_level = logging.ERROR

    def due(self) -> bool:
        """A commit is owed: enough writes, or time, since the last one."""
        return bool(self.dirty) and (self.dirty >= self.max_items
                                     or self.clock() - self.last_commit >= self.interval)

    def admit(self) -> Deferred[None] | None:
        """None if a new item may be decided now; else a Deferred that fires after the commit
        the items in flight are being drained for."""
        if self._waiters or (self.in_flight and self.due()):
            waiter: Deferred[None] = Deferred()
            self._waiters.append(waiter)
            return waiter
        return None

    def wrote(self, in_flight: bool = False) -> None:
        """Something was written; ``in_flight``: for an item not archived yet."""
        self.dirty += 1
        if in_flight:
            self.in_flight += 1
        else:
            self.settle(0)

    def settle(self, items: int = 1) -> None:
        """``items`` in-flight items left the pipelines: commit if nothing is in flight now."""
        self.in_flight = max(0, self.in_flight - items)
        if self.in_flight == 0 and (self.dirty or self._waiters):
            self.commit()

    def commit(self) -> None:
        if self.dirty and not self.state.closed:
            try:
                self.state.commit()
            except self.state.unavailable as exc:  # kept: the next commit sends it
                self.unavailable(exc, rollback=False)
            else:
                self.commits += 1
                self.dirty = 0
                self.back()
        self.last_commit = self.clock()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # the state's server away ----------------------------------------------------------------
    def unavailable(self, exc: BaseException, rollback: bool = True) -> None:
        """An operation failed because the state's server is away: undo what it half wrote
        (every uncommitted write: the state never claims what the archive may lack) and say so
        once per outage."""
        if rollback:
            self.state.rollback()
            self.dirty = 0
        if self.away_since is None:
            self.away_since = self.clock()
            logger.log(self.outage_level, "Dedup state unreachable (%s): holding items back, "
                       "retrying", exc)

    def back(self) -> None:
        if self.away_since is not None:
            logger.log(max(self.outage_level - 10, logging.DEBUG), "Dedup state is back after "
                       "%.0f s", self.clock() - self.away_since)
            self.away_since = None


class StateStores:
    """The states opened for the crawls of one run, by state: shared, closed by the last user."""

    def __init__(self) -> None:
        self._open: dict[str, SharedState] = {}

    def lease(self, settings: Any) -> SharedState:
        key = state_key(settings)
        shared = self._open.get(key)
        if shared is None:
            shared = SharedState(open_state(settings),
                                 settings.getfloat("GOVCRAWL_STATE_COMMIT_INTERVAL", 5.0),
                                 settings.getint("GOVCRAWL_STATE_COMMIT_ITEMS", 200))
            self._open[key] = shared
        shared.users += 1
        return shared

    def release(self, shared: SharedState) -> None:
        """One crawl is done with ``shared``: commit, unless another crawl of the run has items
        in flight (they commit when they settle); close it once no crawl uses it."""
        shared.users -= 1
        shared.settle(0)  # commits unless another crawl's items are in flight
        if shared.users <= 0:
            shared.commit()
            shared.state.close()
            self._open = {k: v for k, v in self._open.items() if v is not shared}


class StateServiceMissing(RuntimeError):
    """A component that needs the crawler's dedup state runs without the extension."""


class StateService:
    """Scrapy extension: its crawler's dedup state, items in flight and commits."""

    def __init__(self, crawler: Any, stores: StateStores) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.stores = stores
        self.shared = stores.lease(crawler.settings)
        self.state = self.shared.state
        try:
            self.dedup = Deduplicator(self.state, DedupConfig.from_settings(crawler.settings))
        except Exception:
            stores.release(self.shared)
            raise
        self.shared.wrote()  # the configuration recorded in a new state
        #: this crawl's items in flight: id(item) -> its verdict
        self._in_flight: dict[int, DedupResult] = {}
        self.closed = False
        self.retry_max = crawler.settings.getfloat("GOVCRAWL_REDIS_RETRY_MAX", 30.0)
        # on the cluster's own Redis the scheduler already logs the outage (one line, not two)
        cluster = urlsplit(str(crawler.settings.get("GOVCRAWL_REDIS_URL") or "")).netloc
        if cluster and urlsplit(str(getattr(self.state, "uri", ""))).netloc == cluster:
            self.shared.outage_level = logging.DEBUG

    @classmethod
    def from_crawler(cls, crawler: Any) -> StateService:
        stores = getattr(crawler, "govcrawl_state_stores", None) or StateStores()
        service = cls(crawler, stores)
        crawler.signals.connect(service.item_done, signal=signals.item_scraped)
        crawler.signals.connect(service.item_done, signal=signals.item_dropped)
        crawler.signals.connect(service.item_failed, signal=signals.item_error)
        crawler.signals.connect(service.close, signal=signals.spider_closed)
        return service

    @staticmethod
    def of(crawler: Any, required: bool = True) -> StateService | None:
        """The crawler's service (for the components that use the state); without it, raise
        :class:`StateServiceMissing` (not NotConfigured: Scrapy would quietly drop the dedup
        stage), or return None when not ``required``."""
        try:
            service = crawler.get_extension(StateService)
        except RuntimeError:  # a crawler whose extensions are not built (yet)
            service = None
        if service is None and required:
            raise StateServiceMissing("the dedup state needs the extension "
                                      "crawler.dedup.service.StateService in EXTENSIONS")
        return service

    # deciding ------------------------------------------------------------------------------
    async def admitted(self) -> None:
        """Wait while a commit is being drained for (see the module doc)."""
        waiter = self.shared.admit()
        if waiter is not None:
            self.stats.inc_value("govcrawl/dedup/commit_waits")
            await maybe_deferred_to_future(waiter)

    async def check(self, item: Any, **kwargs: Any) -> DedupResult:
        """Decide ``item`` (:meth:`Deduplicator.check`); it is in flight until it settles.
        While the state's server is away, wait for it (see the module doc)."""
        backoff = 0.5
        while True:
            try:
                result = self.dedup.check(item.url, **kwargs)
            except self.state.unavailable as exc:
                self.stats.inc_value("govcrawl/dedup/state_outages", int(
                    self.shared.away_since is None))
                self.shared.unavailable(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            self.shared.back()
            self._in_flight[id(item)] = result
            self.shared.wrote(in_flight=True)
            return result

    def known(self, url: str) -> UrlRecord | None:
        """The state's record of ``url`` (a document or an attachment), or None."""
        return self.state.get_url(url)

    # settling --------------------------------------------------------------------------------
    def item_done(self, item: Any, **kwargs: Any) -> None:
        """The item left the pipelines (archived, or dropped by a later stage)."""
        if isinstance(item, PageItem) and item.kind == ATTACHMENT and item.archived:
            self.record_attachment(item)
        if self._in_flight.pop(id(item), None) is not None:
            self.shared.settle()

    def item_failed(self, item: Any, failure: Any = None, **kwargs: Any) -> None:
        """A later stage raised on the item: forget its verdict, so the next run fetches it."""
        result = self._in_flight.pop(id(item), None)
        if result is None:
            return
        logger.warning("undoing dedup state of %s after a pipeline error", item.url)
        self._undo(result)

    def _undo(self, result: DedupResult) -> None:
        """Forget the verdict of an item in flight that will not be archived."""
        try:
            self.dedup.undo(result)
        except self.state.unavailable as exc:  # rolled back with the uncommitted window
            self.shared.unavailable(exc)
        self.stats.inc_value("govcrawl/dedup/undone")
        self.shared.dirty += 1
        self.shared.settle()

    def record_attachment(self, item: Any) -> None:
        """An archived attachment is known: a list page linking it need not fetch it again."""
        rec = item.response
        sha, now = sha256_hex(rec.body), utc_now()
        try:
            for url in {rec.requested_url or rec.url, rec.url}:
                self.state.put_url(attachment_record(url, sha, rec.header("ETag"),
                                                     rec.header("Last-Modified"), now))
        except self.state.unavailable as exc:  # not recorded: the next crawl fetches it again
            self.shared.unavailable(exc)
            return
        self.shared.wrote()

    def forget(self, verdicts: list[dict[str, Any]]) -> None:
        """Undo verdicts whose writes were set aside as unwritable (a damaged spool entry)."""
        self.stats.inc_value("govcrawl/dedup/undone", forget(self.dedup, verdicts))
        self.shared.wrote()

    def close(self, spider: Any = None, reason: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        # items that never left the pipelines (none after an orderly close): their archive
        # writes are unconfirmed, so forget their verdicts, and the next crawl fetches them
        unsettled, self._in_flight = list(self._in_flight.values()), {}
        for result in unsettled:
            logger.warning("undoing dedup state of document %s: it never left the pipelines",
                           result.doc_id)
            self._undo(result)
        self.stats.set_value("govcrawl/dedup/commits", self.shared.commits)
        self.stores.release(self.shared)
