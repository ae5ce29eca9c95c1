"""The archive's key layout (documented in docs/archive-layout.md) and key sanitisation.

Every key is built here from sanitised parts only: site names and ids are reduced to
``[a-z0-9._-]`` (ids keep their case), URLs never appear in keys except as hashes.
"""

from __future__ import annotations

import hashlib
import re

DOCS = "docs"
ALIASES = "aliases"
ATTACHMENTS = "attachments"
CRAWLS = "crawls"
#: The archive's identity (``{"archive_id": ...}``), which the dedup state describing it records.
ARCHIVE_ID = "archive.json"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
_MAX_PART = 80


class UnsafeKeyError(ValueError):
    """A key that could escape the archive prefix (``..``, absolute, control characters...)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url_hash(url: str) -> str:
    """A fixed-length, key-safe stand-in for a URL."""
    return sha256_hex(url.encode("utf-8", "surrogatepass"))[:32]


def safe_part(value: str | None, *, lower: bool = False, default: str = "_") -> str:
    """One key segment made from untrusted text: no slashes, no ``..``, no leading dot.

    Anything outside ``[A-Za-z0-9._-]`` becomes ``_``. If the value had to be changed or cut,
    a short hash of the original is appended so that different inputs stay different keys.
    """
    raw = value or ""
    text = raw.lower() if lower else raw
    cleaned = _DOTS.sub(".", _UNSAFE.sub("_", text)).strip("._-")
    if not cleaned:
        cleaned = default
    changed = cleaned != text
    if len(cleaned) > _MAX_PART:
        cleaned, changed = cleaned[:_MAX_PART].rstrip("._-"), True
    if changed and raw:
        cleaned = f"{cleaned}-{sha256_hex(raw.encode('utf-8', 'surrogatepass'))[:8]}"
    return cleaned


def site_part(site: str | None) -> str:
    """The key segment of a site name (``www.gov.cn:8080`` -> ``www.gov.cn_8080-<hash>``)."""
    return safe_part(site, lower=True, default="unknown-site")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`UnsafeKeyError`."""
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key:
        raise UnsafeKeyError(f"unsafe archive key: {key!r}")
    return key


def doc_prefix(site: str, doc_id: str) -> str:
    return check_key(f"{DOCS}/{site_part(site)}/{safe_part(doc_id)}")


def version_part(version: int) -> str:
    return f"v{int(version)}"


def doc_keys(site: str, doc_id: str, version: int) -> tuple[str, str]:
    """``(text key, meta.json key)`` of one version of a document."""
    base = f"{doc_prefix(site, doc_id)}/{version_part(version)}"
    return f"{base}/text", f"{base}/meta.json"


def doc_attachment_text_key(site: str, doc_id: str, version: int) -> str:
    """The attachments' text of one version of a notice that is only its attachments."""
    return f"{doc_prefix(site, doc_id)}/{version_part(version)}/attachment_text"


def parse_version(segment: str) -> int | None:
    m = re.fullmatch(r"v(\d+)", segment)
    return int(m.group(1)) if m else None


def alias_key(site: str, url: str, text_hash: str) -> str:
    """Pointer from a duplicate URL to its canonical document (one per URL and text)."""
    return check_key(
        f"{ALIASES}/{site_part(site)}/{url_hash(url)}/{safe_part(text_hash)[:16]}.json"
    )


def attachment_body_key(sha256: str) -> str:
    return check_key(f"{ATTACHMENTS}/{sha256[:2]}/{sha256}/body")


def attachment_text_keys(sha256: str) -> tuple[str, str]:
    """``(text, text.json)``: an attachment's extracted text and what is known about it."""
    base = check_key(f"{ATTACHMENTS}/{sha256[:2]}/{sha256}")
    return f"{base}/text", f"{base}/text.json"


def attachment_ref_key(sha256: str, ref_json: bytes) -> str:
    """Where one sighting (url, name, found_on) of an attachment is recorded."""
    return check_key(f"{ATTACHMENTS}/{sha256[:2]}/{sha256}/refs/{sha256_hex(ref_json)[:32]}.json")


def crawl_prefix(crawl_id: str) -> str:
    return check_key(f"{CRAWLS}/{safe_part(crawl_id)}")


def manifest_key(crawl_id: str) -> str:
    return f"{crawl_prefix(crawl_id)}/manifest.jsonl"


def report_key(crawl_id: str) -> str:
    return f"{crawl_prefix(crawl_id)}/report.json"


def warc_key(crawl_id: str, seq: int) -> str:
    part = safe_part(crawl_id)
    return f"{crawl_prefix(crawl_id)}/warc/{part}-{seq:05d}.warc.gz"
