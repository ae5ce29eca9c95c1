"""Text normalisation for exact dedup: what two copies of one document have in common.

``normalise_text`` applies NFKC (full-width -> half-width), drops page-furniture lines listed in
``boilerplate.yaml`` (counters, print/share controls, prev/next links...), case-folds, and removes
all whitespace, punctuation and separator/control characters, so that trivial differences do not
defeat exact dedup. ``text_hash`` is the sha256 of that string.

Speed (the result is exactly the one of the plain definition, see tests/test_dedup_state.py):
NFKC is computed as NFC of the text with each compatibility character replaced by its NFKD
(NFKC(s) = NFC(NFKD(s)), and NFKD is the canonical reordering of the per-character
decompositions), done on the code-point array with numpy for the compatibility characters whose
NFKD is one BMP character (full-width punctuation), after a regular expression has replaced the
few whose NFKD is longer (``…``, ``⑴``, ``℃``, ``Ⅲ``: common in government text); NFC then returns
at once on its quick check. The final deletion of dropped categories is a numpy mask over the
code points.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

BOILERPLATE_FILE = Path(__file__).with_name("boilerplate.yaml")

#: Unicode categories removed from the normalised text: punctuation, separators, controls
#: (including zero-width format characters), math and modifier symbols (``~`` ``|`` ``^`` ...).
#: Private-use (some sites draw rare name characters there) and unassigned code points are kept.
DROPPED_CATEGORIES = ("P", "Z", "Cc", "Cf", "Sm", "Sk")

_BMP = 0x10000


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


@lru_cache(maxsize=1)
def _drop_mask() -> np.ndarray:
    """``_drop_table`` as a boolean array indexed by code point."""
    mask = np.zeros(0x110000, dtype=bool)
    mask[np.fromiter(_drop_table(), dtype=np.int64)] = True
    return mask


#: ``_compat_map`` value of a compatibility character whose NFKD is more than one character.
_COMPLEX = 0x110000


@lru_cache(maxsize=1)
def _compat_map() -> np.ndarray:
    """BMP code point -> the code point of its one-character NFKD where that differs from its
    NFD, :data:`_COMPLEX` where that NFKD is longer, else the code point itself."""
    mapping = np.arange(_BMP, dtype=np.uint32)
    for cp in range(_BMP):
        ch = chr(cp)
        nfkd = unicodedata.normalize("NFKD", ch)
        if nfkd != unicodedata.normalize("NFD", ch):
            mapping[cp] = ord(nfkd) if len(nfkd) == 1 else _COMPLEX
    return mapping


@lru_cache(maxsize=1)
def _expansions() -> tuple[re.Pattern[str], dict[str, str]]:
    """The BMP compatibility characters whose NFKD is longer than one character (marked
    :data:`_COMPLEX` in :func:`_compat_map`): a pattern matching any of them, and their NFKD."""
    table = {chr(int(cp)): unicodedata.normalize("NFKD", chr(int(cp)))
             for cp in np.flatnonzero(_compat_map() == _COMPLEX)}
    return re.compile("[" + "".join(map(re.escape, table)) + "]"), table


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _from_codes(codes: np.ndarray) -> str:
    return codes.astype("<u4", copy=False).tobytes().decode("utf-32-le", "surrogatepass")


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster on text whose compatibility characters
    each decompose to one BMP character (see module doc)."""
    codes = _codes(text)
    if not len(codes) or int(codes.max()) >= _BMP:
        return unicodedata.normalize("NFKC", text)
    mapped = _compat_map()[codes]
    if int(mapped.max()) >= _COMPLEX:  # an NFKD is fully decomposed: no compat character left
        pattern, table = _expansions()
        expanded = pattern.sub(lambda found: table[found[0]], text)
        codes = _codes(expanded)
        if int(codes.max()) >= _BMP:
            return unicodedata.normalize("NFKC", text)
        text, mapped = expanded, _compat_map()[codes]
    if not np.array_equal(mapped, codes):
        text = _from_codes(mapped)
    return unicodedata.normalize("NFC", text)


def drop_categories(text: str) -> str:
    """``text`` without the characters of :data:`DROPPED_CATEGORIES`."""
    codes = _codes(text)
    keep = ~_drop_mask()[codes]
    return text if keep.all() else _from_codes(codes[keep])


def normalise_text(text: str) -> str:
    """The text as exact dedup compares it (see module doc)."""
    if not text:
        return ""
    max_chars, pattern = _boilerplate()
    match = pattern.match  # a boilerplate line: at most max_chars, matching a pattern
    kept = [ln for ln in map(str.strip, nfkc(text).splitlines())
            if ln and (len(ln) > max_chars or match(ln) is None)]
    return drop_categories("".join(kept).casefold())


def text_hash(text: str) -> str:
    """sha256 hex digest of :func:`normalise_text`."""
    return hashlib.sha256(normalise_text(text).encode("utf-8", "surrogatepass")).hexdigest()
