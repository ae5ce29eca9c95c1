"""Dedup state: what earlier crawls saw, kept across runs. Backends are chosen by URI scheme.

:class:`DedupState` is the interface a backend implements (SQLite and Redis are built in).
It stores five small tables: URL records (also used by incremental crawling), documents (current
version, fingerprint, MinHash signature), version history, identities (``site + 索引号`` ->
doc_id), exact-text owners (fingerprint -> doc_id) and the LSH buckets. The dedup *logic* lives in
:class:`crawler.dedup.engine.Deduplicator` and only uses these primitives.

``open_state(settings)`` opens the state named by ``GOVCRAWL_DEDUP_STATE`` (default
``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``); the caller owns the instance and closes it. In a
crawl, :class:`crawler.dedup.service.StateService` is the one that opens it, for every component
of its crawler (and the crawls of one run share it, see that module).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

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


#: The ``meta`` keys recording which archive a state describes: its URI and its id (the
#: archive's ``archive.json``), so that an archive emptied or replaced at the same URI is told
#: apart from the one the state knows.
ARCHIVE_KEY = "archive_uri"
ARCHIVE_ID_KEY = "archive_id"

REBUILD_HINT = "govcrawl archive rebuild-state --archive {archive} --state-dir {state_dir}"


class ArchiveView(Protocol):
    """What :func:`bind_to_archive` needs of an archive (``crawler.archive.Archive``)."""

    uri: str

    def archive_id(self) -> str | None: ...

    def claim_id(self, archive_id: str) -> str: ...

    def has_documents(self) -> bool: ...


def bind_to_archive(state: DedupState, archive: ArchiveView, state_dir: str,
                    reachable: bool = True) -> None:
    """Tie ``state`` to the archive it describes; refuse a state that belongs to another one.

    A state knows which documents an archive holds, so that known documents are not fetched
    again. Used with another archive it would skip everything and store nothing; empty beside an
    archive that has documents, it would rewrite them as new. Both are refused with what to do.
    The archive's id (``archive.json``, made on first use) is kept in the state: an archive
    emptied or replaced at the same URI is another archive. An unreachable store (an outage: the
    crawl spools) is checked by URI only.
    """
    uri = archive.uri
    where = str(getattr(state, "path", "") or state.uri)  # the state's file (SQLite), or URI
    bound, bound_id = state.get_meta(ARCHIVE_KEY), state.get_meta(ARCHIVE_ID_KEY)
    hint = REBUILD_HINT.format(archive=uri, state_dir=state_dir)
    if bound is not None and bound != uri:
        raise DedupStateError(f"the state in {state_dir} belongs to archive {bound}, not "
                              f"{uri}: give each archive its own --state-dir (or "
                              f"rebuild this one for it: {hint})")
    if not reachable:
        if bound is None:
            state.set_meta(ARCHIVE_KEY, uri)
            state.commit()
        return
    current = archive.archive_id()
    if bound is None or bound_id is None:  # a new state, or one bound while the store was down
        if archive.has_documents() and not any(state.counts().values()):
            raise DedupStateError(f"the dedup state {where} is empty but archive {uri} has "
                                  f"documents; rebuild it: {hint}")
        state.set_meta(ARCHIVE_KEY, uri)
        state.set_meta(ARCHIVE_ID_KEY, current or archive.claim_id(uuid.uuid4().hex))
        state.commit()
    elif current != bound_id:
        what = "has no archive id (it was emptied or replaced)" if current is None else \
            f"is another archive (id {current})"
        raise DedupStateError(f"the state in {state_dir} describes archive {uri} with id "
                              f"{bound_id}, but {uri} now {what}: for a new archive give a new "
                              f"--state-dir, or rebuild this one for it: {hint}")


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


def attachment_record(url: str, sha256: str, etag: str | None = None,
                      last_modified: str | None = None, seen: str = "") -> UrlRecord:
    """The URL record of an archived attachment: known (a list page linking it need not fetch it
    again), but no document (empty ``doc_id``); ``text_hash`` is its body's SHA-256."""
    return UrlRecord(url, "", 0, sha256, etag, last_modified, seen, seen, "")


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
    #: Errors meaning "the state's server is away for now" (a Redis restart): try again later.
    unavailable: tuple[type[BaseException], ...] = ()

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

    def buckets_get(self, keys: Iterable[tuple[int, bytes]]) -> set[str]:
        """The docs in any of the ``(band, key)`` buckets (backends may do it in one query)."""
        return {doc for band, key in keys for doc in self.bucket_get(band, key)}

    def buckets_add(self, keys: Iterable[tuple[int, bytes]], doc_id: str) -> None:
        """Add ``doc_id`` to each ``(band, key)`` bucket."""
        for band, key in keys:
            self.bucket_add(band, key, doc_id)

    def buckets_remove(self, keys: Iterable[tuple[int, bytes]], doc_id: str) -> None:
        """Remove ``doc_id`` from each ``(band, key)`` bucket."""
        for band, key in keys:
            self.bucket_remove(band, key, doc_id)

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

    # whole-state reads (``govcrawl archive verify``) --------------------------------------------
    @abstractmethod
    def iter_urls(self) -> Iterator[UrlRecord]:
        """Every committed URL record (documents' and attachments')."""

    @abstractmethod
    def iter_versions(self) -> Iterator[VersionRecord]:
        """Every committed version record."""

    def close(self) -> None:
        """Commit and release the backend."""
        if not self.closed:
            self.commit()
            self._close()
            self.closed = True

    @abstractmethod
    def _close(self) -> None: ...


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


def state_class(settings: Any = None) -> type[DedupState]:
    """The backend class of the state these settings name (by URI scheme)."""
    uri = state_uri(settings)
    scheme = uri.split(":", 1)[0].lower()
    backends = _backends(settings)
    if scheme not in backends:
        raise ValueError(f"unknown dedup state scheme {scheme!r} in {uri!r} "
                         f"(known: {', '.join(sorted(backends))})")
    return load_object(backends[scheme])


def state_key(settings: Any = None) -> str:
    """What identifies the state these settings name (an absolute path for SQLite), so that the
    crawls of one run that name the same state share one instance."""
    cls, uri = state_class(settings), state_uri(settings)
    return cls.cache_key(uri) if hasattr(cls, "cache_key") else uri


def open_state(settings: Any = None) -> DedupState:
    """Open the state these settings name; the caller owns it (and closes it)."""
    state = state_class(settings).from_uri(state_uri(settings), settings)
    state.uri = state_key(settings)
    return state
