"""Dedup: exact (normalised text hash) and near-duplicate (MinHash/LSH) detection, identities
(URL, 索引号), versions, and the persistent state behind them.

Public API::

    normalise_text(text) -> str          # what exact dedup compares
    text_hash(text) -> str               # sha256 hex of normalise_text(text)
    open_state(settings) -> DedupState   # the state GOVCRAWL_DEDUP_STATE names (caller closes it)
    # in a crawl: crawler.dedup.service.StateService.of(crawler) (opened once, commits)
    Deduplicator(state, config).check(url, text, ...) -> DedupResult
    rebuild_state(state, records) -> counts   # refill the state from archived versions
"""

from crawler.dedup.engine import (
    DedupConfig,
    DedupConfigError,
    Deduplicator,
    fingerprint,
    identity_key,
    make_doc_id,
    rebuild_state,
)
from crawler.dedup.normalise import normalise_text, text_hash
from crawler.dedup.state import (
    DedupRecordError,
    DedupState,
    DedupStateError,
    DocRecord,
    UrlRecord,
    VersionRecord,
    bind_to_archive,
    canonical_url,
    open_state,
    state_uri,
)

__all__ = [
    "DedupConfig", "DedupConfigError", "DedupRecordError", "DedupState", "DedupStateError",
    "Deduplicator", "bind_to_archive",
    "DocRecord", "UrlRecord", "VersionRecord", "canonical_url", "fingerprint", "identity_key",
    "make_doc_id", "normalise_text", "open_state", "rebuild_state", "state_uri", "text_hash",
]
