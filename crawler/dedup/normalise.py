"""Text normalisation for exact dedup: what two copies of one document have in common.

``normalise_text`` applies NFKC (full-width -> half-width), drops page-furniture lines listed in
``boilerplate.yaml`` (counters, print/share controls, prev/next links...), case-folds, and removes
all whitespace, punctuation and separator/control characters, so that trivial differences do not
defeat exact dedup. ``text_hash`` is the sha256 of that string.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml

BOILERPLATE_FILE = Path(__file__).with_name("boilerplate.yaml")

#: Unicode categories removed from the normalised text: punctuation, separators, controls
#: (including zero-width format characters), math and modifier symbols (``~`` ``|`` ``^`` ...).
#: Private-use (some sites draw rare name characters there) and unassigned code points are kept.
DROPPED_CATEGORIES = ("P", "Z", "Cc", "Cf", "Sm", "Sk")


@lru_cache(maxsize=1)
def _boilerplate() -> tuple[int, re.Pattern[str]]:
    data = yaml.safe_load(BOILERPLATE_FILE.read_text(encoding="utf-8"))
    pattern = re.compile("|".join(f"(?:{p})" for p in data["line_patterns"]))
    return int(data.get("max_line_chars", 80)), pattern


@lru_cache(maxsize=1)
def _drop_table() -> dict[int, None]:
    """A ``str.translate`` table deleting every character of a dropped category (BMP, plane 1,
    tag characters: nothing beyond holds punctuation or separators)."""
    table: dict[int, None] = {}
    for cp in (*range(0x20000), *range(0xE0000, 0xE0080)):
        cat = unicodedata.category(chr(cp))
        if cat in DROPPED_CATEGORIES or cat[0] in DROPPED_CATEGORIES:
            table[cp] = None
    return table


def _is_boilerplate(line: str, max_chars: int, pattern: re.Pattern[str]) -> bool:
    return len(line) <= max_chars and pattern.match(line) is not None


def normalise_text(text: str) -> str:
    """The text as exact dedup compares it (see module doc)."""
    if not text:
        return ""
    max_chars, pattern = _boilerplate()
    lines = unicodedata.normalize("NFKC", text).splitlines()
    kept = [ln for ln in (ln.strip() for ln in lines) if ln and not _is_boilerplate(ln, max_chars,
                                                                                pattern)]
    return "".join(kept).casefold().translate(_drop_table())


def text_hash(text: str) -> str:
    """sha256 hex digest of :func:`normalise_text`."""
    return hashlib.sha256(normalise_text(text).encode("utf-8", "surrogatepass")).hexdigest()
