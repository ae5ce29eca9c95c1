"""Dedup state: what earlier crawls saw, kept across runs. Backends are chosen by URI scheme.

:class:`DedupState` is the interface a backend implements (SQLite and Redis are built in).
It stores five small tables: URL records (also used by incremental crawling), documents (current
version, fingerprint, MinHash signature), version history, identities (``site + 索引号`` ->
doc_id), exact-text owners (fingerprint -> doc_id) and the LSH buckets. The dedup *logic* lives in
:class:`crawler.dedup.engine.Deduplicator` and only uses these primitives.

``open_state(settings)`` opens the state named by ``GOVCRAWL_DEDUP_STATE`` (default
``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``) and returns one shared instance per URI and
process, so the dedup pipeline and a downloader middleware use the same object.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from scrapy.utils.misc import load_object

from crawler.urls import canonicalize

#: Built-in backends by URI scheme; extend with the setting ``GOVCRAWL_DEDUP_STATE_BACKENDS``.
STATE_BACKENDS = {
    "sqlite": "crawler.dedup.sqlite.SQLiteDedupState",
    "redis": "crawler.dedup.redis_state.RedisDedupState",
    "rediss": "crawler.dedup.redis_state.RedisDedupState",
}


@lru_cache(maxsize=4096)
def canonical_url(url: str) -> str:
    """The form URLs are stored and looked up in: the crawl's own canonical form
    (:func:`crawler.urls.canonicalize`), so state and spiders agree on what a URL is."""
    try:
        return canonicalize(url)
    except ValueError:
        return url


class DedupStateError(ValueError):
    """The state cannot be used as it is: unreadable, or it belongs to another archive."""


#: The ``meta`` key recording which archive a state describes.
ARCHIVE_KEY = "archive_uri"

REBUILD_HINT = "govcrawl archive rebuild-state --archive {archive} --state-dir {state_dir}"


def bind_to_archive(state: DedupState, archive_uri: str, archive_has_documents: bool,
                    state_dir: str) -> None:
    """Tie ``state`` to the archive it describes; refuse a state that belongs to another one.

    A state knows which documents an archive holds, so that known documents are not fetched
    again. Used with another archive it would skip everything and store nothing; empty beside an
    archive that has documents, it would rewrite them as new. Both are refused with what to do.
    """
    bound = state.get_meta(ARCHIVE_KEY)
    hint = REBUILD_HINT.format(archive=archive_uri, state_dir=state_dir)
    if bound is None:
        if archive_has_documents and not any(state.counts().values()):
            raise DedupStateError(f"the dedup state in {state_dir} is empty but archive "
                                  f"{archive_uri} has documents; rebuild it: {hint}")
        state.set_meta(ARCHIVE_KEY, archive_uri)
        state.commit()
    elif bound != archive_uri:
        raise DedupStateError(f"the state in {state_dir} belongs to archive {bound}, not "
                              f"{archive_uri}: give each archive its own --state-dir (or "
                              f"rebuild this one for it: {hint})")


class DedupRecordError(ValueError):
    """A write that contradicts the state (e.g. a version that exists already)."""


@dataclass
class UrlRecord:
    """What the last crawl saw at a URL (also the input of conditional GETs)."""

    url: str
    doc_id: str
    version: int
    text_hash: str
    etag: str | None = None
    last_modified: str | None = None
    last_seen: str = ""
    first_seen: str = ""
    fingerprint: str = ""  # internal: what exact dedup compared (see DocRecord)


@dataclass
class DocRecord:
    """A document's current version."""

    doc_id: str
    version: int
    fingerprint: str  # what exact dedup compares (text hash, + title/attachments for short texts)
    text_hash: str
    url: str
    canonical_id: str | None = None
    similarity: float | None = None
    signature: bytes | None = None  # MinHash values (little-endian uint32), None if not indexed
    index_key: str | None = None
    updated: str = ""


@dataclass
class VersionRecord:
    """One version of a document, kept when it changes."""

    doc_id: str
    version: int
    text_hash: str
    fingerprint: str
    url: str
    outcome: str
    canonical_id: str | None = None
    seen_at: str = ""


class DedupState(ABC):
    """Storage primitives of the dedup state. Writes become durable on :meth:`commit`."""

    uri: str = ""
    closed: bool = False

    @classmethod
    @abstractmethod
    def from_uri(cls, uri: str, settings: Any = None) -> DedupState: ...

    # URL records --------------------------------------------------------------------------
    def get_url(self, url: str) -> UrlRecord | None:
        """The record of ``url`` (any form: it is canonicalised), or None if never seen."""
        return self._get_url(canonical_url(url))

    def put_url(self, record: UrlRecord) -> None:
        record.url = canonical_url(record.url)
        self._put_url(record)

    @abstractmethod
    def _get_url(self, url: str) -> UrlRecord | None: ...

    @abstractmethod
    def _put_url(self, record: UrlRecord) -> None: ...

    @abstractmethod
    def delete_url(self, url: str) -> None: ...

    @abstractmethod
    def urls_with_text(self, fingerprint: str, limit: int = 100) -> list[str]:
        """URLs whose last seen text has this fingerprint, oldest first."""

    @abstractmethod
    def urls_for_doc(self, doc_id: str, limit: int = 100) -> list[str]: ...

    # documents and versions ---------------------------------------------------------------
    @abstractmethod
    def get_doc(self, doc_id: str) -> DocRecord | None: ...

    @abstractmethod
    def put_doc(self, record: DocRecord) -> None: ...

    @abstractmethod
    def delete_doc(self, doc_id: str) -> None: ...

    @abstractmethod
    def add_version(self, record: VersionRecord) -> None: ...

    @abstractmethod
    def versions(self, doc_id: str) -> list[VersionRecord]:
        """All known versions of a document, oldest first."""

    @abstractmethod
    def delete_version(self, doc_id: str, version: int) -> None: ...

    # identities (site + 索引号) and exact-text owners ----------------------------------------
    @abstractmethod
    def get_identity(self, key: str) -> str | None: ...

    @abstractmethod
    def put_identity(self, key: str, doc_id: str) -> None:
        """Map ``key`` to ``doc_id`` unless it is mapped already."""

    @abstractmethod
    def delete_identity(self, key: str) -> None: ...

    @abstractmethod
    def get_owner(self, fingerprint: str) -> str | None: ...

    @abstractmethod
    def put_owner(self, fingerprint: str, doc_id: str) -> None:
        """Record ``doc_id`` as holder of this text unless another doc holds it already."""

    @abstractmethod
    def delete_owner(self, fingerprint: str, doc_id: str) -> None: ...

    # LSH buckets (see crawler.dedup.minhash.StateLSH) ---------------------------------------
    @abstractmethod
    def bucket_get(self, band: int, key: bytes) -> list[str]: ...

    @abstractmethod
    def bucket_add(self, band: int, key: bytes, doc_id: str) -> None: ...

    @abstractmethod
    def bucket_remove(self, band: int, key: bytes, doc_id: str) -> None: ...

    @abstractmethod
    def lsh_keys_get(self, doc_id: str) -> bytes | None: ...

    @abstractmethod
    def lsh_keys_put(self, doc_id: str, keys: bytes | None) -> None: ...

    def buckets_get(self, keys: Iterable[tuple[int, bytes]]) -> set[str]:
        """The docs in any of the ``(band, key)`` buckets (backends may do it in one query)."""
        return {doc for band, key in keys for doc in self.bucket_get(band, key)}

    def buckets_add(self, keys: Iterable[tuple[int, bytes]], doc_id: str) -> None:
        """Add ``doc_id`` to each ``(band, key)`` bucket."""
        for band, key in keys:
            self.bucket_add(band, key, doc_id)

    # housekeeping ----------------------------------------------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Row counts per table (for reports and tests)."""

    @abstractmethod
    def clear(self) -> None:
        """Forget everything (used before a rebuild)."""

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    def acquire(self) -> DedupState:
        """Register one more user of this shared instance (see :meth:`release`)."""
        self._users = getattr(self, "_users", 0) + 1
        if not hasattr(self, "in_flight"):
            #: ids of items whose state is written but not yet safe to commit, across every
            #: crawl sharing this instance: a commit is only safe when this is empty.
            self.in_flight: set[int] = set()
        return self

    def release(self) -> None:
        """One user is done: commit, and close once no user is left.

        Several crawls in one process (``govcrawl crawl --all``) share one instance; the first
        to finish must not close it under the others.
        """
        self._users = getattr(self, "_users", 1) - 1
        if self._users > 0:
            self.commit()
        else:
            self.close()

    def close(self) -> None:
        """Commit and release the backend; the shared instance is dropped from the cache."""
        if not self.closed:
            self.commit()
            self._close()
            self.closed = True
        with _LOCK:
            if _OPEN.get(self.uri) is self:
                del _OPEN[self.uri]

    @abstractmethod
    def _close(self) -> None: ...


_OPEN: dict[str, DedupState] = {}
_LOCK = threading.Lock()


def _setting(settings: Any, name: str, default: Any = None) -> Any:
    if settings is None:
        return default
    value = settings.get(name, default) if isinstance(settings, Mapping) or hasattr(
        settings, "get") else default
    return default if value is None else value


def state_uri(settings: Any) -> str:
    """``GOVCRAWL_DEDUP_STATE``, or ``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``."""
    uri = _setting(settings, "GOVCRAWL_DEDUP_STATE")
    if uri:
        return str(uri)
    state_dir = str(_setting(settings, "GOVCRAWL_STATE_DIR", ".govcrawl")).rstrip("/") or "."
    return f"sqlite:///{state_dir}/dedup.sqlite"


def _backends(settings: Any) -> dict[str, str]:
    extra = _setting(settings, "GOVCRAWL_DEDUP_STATE_BACKENDS", {})
    if hasattr(extra, "copy_to_dict"):
        extra = extra.copy_to_dict()
    return {**STATE_BACKENDS, **dict(extra or {})}


def open_state(settings: Any = None) -> DedupState:
    """The process-wide state for these settings (opened on first use, then shared)."""
    uri = state_uri(settings)
    scheme = uri.split(":", 1)[0].lower()
    backends = _backends(settings)
    if scheme not in backends:
        raise ValueError(f"unknown dedup state scheme {scheme!r} in {uri!r} "
                         f"(known: {', '.join(sorted(backends))})")
    cls = load_object(backends[scheme])
    key = cls.cache_key(uri) if hasattr(cls, "cache_key") else uri
    with _LOCK:
        state = _OPEN.get(key)
        if state is None or state.closed:
            state = cls.from_uri(uri, settings)
            state.uri = key
            _OPEN[key] = state
        return state
