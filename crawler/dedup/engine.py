"""The dedup decision: one outcome per document, recorded in a :class:`DedupState`.

Identity: a document is its URL, and also its 索引号 where the page has one (``site + 索引号``),
so a notice moved to a new URL keeps its doc_id. For an identity already known, the same text is
``unchanged`` and a different text is ``changed`` (version + 1, older versions stay in the state).
A new identity is ``duplicate`` if its text (its *fingerprint*) is held by another document,
``near_duplicate`` if a document with estimated Jaccard >= threshold exists (MinHash/LSH), else
``new``.

The fingerprint is :func:`text_hash` of the text; for short texts (``短`` notices such as
"详见附件") the normalised title and attachment names join it, so two different notices with the
same two-line body are not collapsed into one alias.
"""

from __future__ import annotations

import hashlib
import posixpath
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.dedup.minhash import (
    StateLSH,
    band_params,
    signature,
    signature_bytes,
    signature_from_bytes,
)
from crawler.dedup.normalise import normalise_text
from crawler.dedup.state import DedupState, DocRecord, UrlRecord, VersionRecord, canonical_url
from crawler.items import (
    CHANGED,
    DUPLICATE,
    NEAR_DUPLICATE,
    NEW,
    UNCHANGED,
    DedupResult,
    utc_now,
)
from crawler.urls import host_of


class DedupConfigError(ValueError):
    """The state was built with other MinHash parameters: rebuild it or change the settings."""


@dataclass
class DedupConfig:
    """Tunables, from settings ``GOVCRAWL_DEDUP_*``."""

    threshold: float = 0.9  # GOVCRAWL_DEDUP_THRESHOLD: near-duplicate Jaccard (char shingles)
    num_perm: int = 64  # GOVCRAWL_DEDUP_NUM_PERM
    shingle: int = 5  # GOVCRAWL_DEDUP_SHINGLE: characters per shingle
    short_text: int = 200  # GOVCRAWL_DEDUP_SHORT_TEXT: shorter -> title+attachments join fp
    max_candidates: int = 200  # GOVCRAWL_DEDUP_MAX_CANDIDATES: LSH candidates verified per doc
    max_urls: int = 100  # URLs listed in DedupResult.urls
    #: A new URL joins a document through its 索引号 only if its text is at least this similar
    #: (MinHash Jaccard): a moved or edited notice does, a template that prints one 索引号 on
    #: every page does not.
    identity_similarity: float = 0.5

    @classmethod
    def from_settings(cls, settings: Any) -> DedupConfig:
        def get(name: str, default: Any, kind: type) -> Any:
            value = settings.get(name) if settings is not None else None
            return default if value in (None, "") else kind(value)

        d = cls()
        return cls(
            threshold=get("GOVCRAWL_DEDUP_THRESHOLD", d.threshold, float),
            num_perm=get("GOVCRAWL_DEDUP_NUM_PERM", d.num_perm, int),
            shingle=get("GOVCRAWL_DEDUP_SHINGLE", d.shingle, int),
            short_text=get("GOVCRAWL_DEDUP_SHORT_TEXT", d.short_text, int),
            max_candidates=get("GOVCRAWL_DEDUP_MAX_CANDIDATES", d.max_candidates, int),
        )

    def meta(self) -> dict[str, str]:
        """What the stored signatures and buckets depend on."""
        bands, rows = band_params(self.threshold, self.num_perm)
        return {"num_perm": str(self.num_perm), "shingle": str(self.shingle),
                "bands": f"{bands}x{rows}", "minhash": "datasketch-affine32-seed1"}


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def identity_key(site: str | None, url: str, index_no: str | None) -> str | None:
    """``site|索引号`` (site defaults to the URL's host), or None when there is no usable 索引号."""
    if not index_no:
        return None
    value = "".join(unicodedata.normalize("NFKC", index_no).split()).upper()
    if len(value) < 4 or not any(ch.isdigit() for ch in value):
        return None  # "无", "-", labels: not an identity
    scope = (site or host_of(url)).strip().lower()
    return f"{scope}|{value}"


def make_doc_id(url: str, ikey: str | None) -> str:
    """Stable, key-safe id: sha1 hex of ``site|索引号`` if any, else of the canonical URL."""
    return _sha1(f"index:{ikey}") if ikey else _sha1(canonical_url(url))


def fingerprint(normalised: str, title: str | None = None,
                attachments: Sequence[Mapping[str, str]] = (), short_text: int = 200, *,
                text_hash: str | None = None) -> str:
    """What exact dedup compares (see module doc). ``text_hash``: ``_sha256(normalised)`` if the
    caller has it already (a long text's fingerprint is that hash)."""
    if len(normalised) >= short_text:
        return text_hash or _sha256(normalised)
    names = sorted(normalise_text(a.get("name") or posixpath.basename(urlsplit(
        a.get("url") or "").path)) for a in attachments)
    return _sha256("\x1f".join([normalised, normalise_text(title or ""), *names]))


class Deduplicator:
    """Decides the outcome of each document and records it in the state (uncommitted)."""

    def __init__(self, state: DedupState, config: DedupConfig | None = None):
        self.state = state
        self.config = config or DedupConfig()
        self._check_meta()
        self.lsh = StateLSH(state, self.config.threshold, self.config.num_perm)

    def _check_meta(self) -> None:
        for key, value in self.config.meta().items():
            stored = self.state.get_meta(key)
            if stored is None:
                self.state.set_meta(key, value)
            elif stored != value:
                raise DedupConfigError(
                    f"dedup state {self.state.uri} was built with {key}={stored}, settings give "
                    f"{value}: restore the settings or rebuild the state from the archive")

    # the decision ----------------------------------------------------------------------------
    def check(self, url: str, text: str, *, site: str | None = None,
              index_no: str | None = None, title: str | None = None,
              attachments: Sequence[Mapping[str, str]] = (), etag: str | None = None,
              last_modified: str | None = None, requested_url: str | None = None,
              now: str | None = None) -> DedupResult:
        """The outcome for a document seen at ``url`` (its state is written, not committed)."""
        st, cfg = self.state, self.config
        now = now or utc_now()
        curl = canonical_url(url)
        norm = normalise_text(text)
        th = _sha256(norm)
        fp = fingerprint(norm, title, attachments, cfg.short_text, text_hash=th)
        ikey = identity_key(site, curl, index_no)

        urec = st.get_url(curl)
        doc_id = urec.doc_id if urec else (st.get_identity(ikey) if ikey else None)
        doc_id = doc_id or make_doc_id(curl, ikey)
        doc = st.get_doc(doc_id)
        if urec is None and doc is not None and doc.fingerprint != fp \
                and not self._same_document(norm, doc):
            # Another text under a known 索引号 at a new URL: not a move but a different document
            # (templates that repeat one 索引号): identify it by its URL.
            ikey, doc_id = None, make_doc_id(curl, None)
            doc = st.get_doc(doc_id)

        canonical: str | None = None
        similarity: float | None = None
        if doc is not None and doc.fingerprint == fp:
            outcome, version = UNCHANGED, doc.version
            canonical, similarity = doc.canonical_id, doc.similarity
        else:
            owner = st.get_owner(fp)
            version = doc.version + 1 if doc else 1
            sig = None
            if doc is None and owner is not None and owner != doc_id:
                outcome, canonical, similarity = DUPLICATE, owner, 1.0
            else:
                sig = signature(norm, cfg.num_perm, cfg.shingle)
                near = self._nearest(sig, doc_id) if doc is None and sig is not None else None
                if doc is not None:
                    outcome = CHANGED
                elif near is not None:
                    outcome, (canonical, similarity) = NEAR_DUPLICATE, near
                else:
                    outcome = NEW
            st.put_doc(DocRecord(doc_id, version, fp, th, curl, canonical, similarity,
                                 signature_bytes(sig) if sig is not None else None, ikey, now))
            st.add_version(VersionRecord(doc_id, version, th, fp, curl, outcome, canonical, now))
            if outcome != DUPLICATE:
                st.put_owner(fp, doc_id)
            previous = doc.signature if doc is not None else None
            if sig is not None:
                self.lsh.replace(doc_id, sig, previous)
            elif previous is not None:
                self.lsh.unindex(doc_id, previous)

        for seen in {curl, canonical_url(requested_url)} if requested_url else {curl}:
            st.put_url(UrlRecord(seen, doc_id, version, th, etag, last_modified, now, now, fp))
        if ikey:
            st.put_identity(ikey, doc_id)
        return DedupResult(outcome=outcome, doc_id=doc_id, version=version, text_hash=th,
                           canonical_id=canonical, similarity=similarity,
                           urls=st.urls_with_text(fp, cfg.max_urls))

    def _same_document(self, norm: str, doc: Any) -> bool:
        if doc.signature is None:
            return False
        sig = signature(norm, self.config.num_perm, self.config.shingle)
        if sig is None:
            return False
        score = float(sig.jaccard(signature_from_bytes(doc.signature)))
        return score >= self.config.identity_similarity

    def _nearest(self, sig: Any, doc_id: str) -> tuple[str, float] | None:
        """The most similar indexed document at or above the threshold (canonical ones first)."""
        best: tuple[float, bool, str] | None = None
        for cand in self.lsh.candidates(sig, exclude=(doc_id,))[: self.config.max_candidates]:
            other = self.state.get_doc(cand)
            if other is None or other.signature is None:
                continue
            score = float(sig.jaccard(signature_from_bytes(other.signature)))
            key = (score, other.canonical_id is None, cand)
            if score >= self.config.threshold and (best is None or key > best):
                best = key
        return (best[2], round(best[0], 4)) if best else None

    # undo ----------------------------------------------------------------------------------
    def undo(self, result: DedupResult) -> None:
        """Forget what :meth:`check` recorded for ``result`` (the archive failed to store it),
        so that the next crawl sees the document as new/changed again."""
        st = self.state
        if result.outcome == UNCHANGED:
            return
        doc = st.get_doc(result.doc_id)
        if doc is None or doc.version != result.version:
            return
        versions = st.versions(result.doc_id)
        st.delete_version(result.doc_id, result.version)
        previous = [v for v in versions if v.version < result.version]
        if not any(v.fingerprint == doc.fingerprint for v in previous):
            st.delete_owner(doc.fingerprint, result.doc_id)
        if doc.signature is not None:
            self.lsh.unindex(result.doc_id, doc.signature)
        urls = st.urls_for_doc(result.doc_id, limit=10_000)
        if not previous:
            st.delete_doc(result.doc_id)
            for url in urls:
                st.delete_url(url)
            if doc.index_key and st.get_identity(doc.index_key) == result.doc_id:
                st.delete_identity(doc.index_key)
            return
        last = previous[-1]
        st.put_doc(DocRecord(doc.doc_id, last.version, last.fingerprint, last.text_hash, last.url,
                             last.canonical_id, None, None, doc.index_key, doc.updated))
        for url in urls:
            rec = st.get_url(url)
            if rec is not None and rec.version == result.version:
                # no validators: a conditional GET must not skip the page next time
                st.put_url(UrlRecord(url, rec.doc_id, last.version, last.text_hash, None, None,
                                     rec.last_seen, rec.first_seen, last.fingerprint))


def _record_fields(record: Any) -> dict[str, Any]:
    if isinstance(record, Mapping):
        return dict(record)
    fields = ("doc_id", "version", "url", "index_no", "text", "site")
    return dict(zip(fields, record, strict=False))


def rebuild_state(state: DedupState, records: Iterable[Any], config: DedupConfig | None = None,
                  *, clear: bool = True, commit_every: int = 1000) -> dict[str, int]:
    """Refill ``state`` from archived versions, e.g. for ``govcrawl archive rebuild-state``.

    Each record is a tuple ``(doc_id, version, url, index_no, text[, site])`` or a mapping with
    those keys and optionally ``site`` (the crawl's site name; default the URL host), ``title``,
    ``attachments``, ``etag``, ``last_modified``, ``seen_at``, and for an alias (a stored
    ``duplicate``) ``outcome="duplicate"`` + ``canonical_id`` (``text`` = the canonical text);
    ``canonical_id`` + ``similarity`` also restore a near-duplicate link. Records may come in any
    order; the highest version of each doc becomes its current one. Returns counts.
    """
    config = config or DedupConfig()
    if clear:
        state.clear()
    dedup = Deduplicator(state, config)
    counts = {"records": 0, "docs": 0, "skipped": 0}
    for raw in records:
        r = _record_fields(raw)
        doc_id, version, url = str(r["doc_id"]), int(r["version"]), canonical_url(str(r["url"]))
        seen = r.get("seen_at") or r.get("fetched_at") or utc_now()
        norm = normalise_text(r.get("text") or "")
        th = _sha256(norm)
        fp = fingerprint(norm, r.get("title"), r.get("attachments") or (), config.short_text,
                         text_hash=th)
        ikey = identity_key(r.get("site"), url, r.get("index_no"))
        canonical = r.get("canonical_id")
        alias = r.get("outcome") == DUPLICATE and canonical
        outcome = r.get("outcome") or (CHANGED if version > 1 else
                                       NEAR_DUPLICATE if canonical else NEW)
        if any(v.version == version for v in state.versions(doc_id)):
            counts["skipped"] += 1
            continue
        state.add_version(VersionRecord(doc_id, version, th, fp, url, outcome, canonical, seen))
        current = state.get_doc(doc_id)
        if current is None or version > current.version:
            sig = None if alias else signature(norm, config.num_perm, config.shingle)
            similarity = 1.0 if alias else r.get("similarity")
            state.put_doc(DocRecord(doc_id, version, fp, th, url, canonical, similarity,
                                    signature_bytes(sig) if sig is not None else None, ikey,
                                    seen))
            previous = current.signature if current is not None else None
            if sig is not None:
                dedup.lsh.replace(doc_id, sig, previous)
            elif previous is not None:
                dedup.lsh.unindex(doc_id, previous)
            counts["docs"] += current is None
        if not alias:
            state.put_owner(fp, doc_id)
        known = state.get_url(url)
        if known is None or known.doc_id != doc_id or known.version <= version:
            state.put_url(UrlRecord(url, doc_id, version, th, r.get("etag"),
                                    r.get("last_modified"), seen, seen, fp))
        if ikey:
            state.put_identity(ikey, doc_id)
        counts["records"] += 1
        if counts["records"] % commit_every == 0:
            state.commit()
    state.commit()
    return counts
