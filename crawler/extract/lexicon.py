"""Load the YAML lexicons (crawler/lexicons/*.yaml) once and compile their patterns.

A compiled lexicon pattern is guarded by a lookahead on the characters any of its matches can
start with (``(?=[...])(?:pattern)``, see :func:`first_chars`): the same matches, but the regex
engine tries the alternation only where such a character is, not at every position of a line.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

try:  # the stdlib regex parser (private, stable since 3.11); without it patterns are unguarded
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover
    _sre = _sre_parse = None

LEXICON_DIR = Path(__file__).resolve().parent.parent / "lexicons"
_SPACED = "[\\s\\u3000]*"


def spaced(label: str) -> str:
    """Turn the ``_`` of a lexicon label into optional letter spacing: 主_办 ->
    主[\\s\\u3000]*办."""
    return label.replace("_", _SPACED)


def alternation(words: list[str]) -> str:
    """A regex alternation of (spaced) labels, longest first."""
    return "|".join(spaced(w) for w in sorted(words, key=len, reverse=True))


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed YAML file ``crawler/lexicons/<name>.yaml``."""
    with open(LEXICON_DIR / f"{name}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


_CATEGORY_ESCAPES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


class _Unknown(Exception):
    """The pattern can start with (almost) anything, or uses a construct not analysed."""


def _class_items(op: Any, av: Any) -> list[str]:
    """Character-class source for one consuming item (LITERAL, IN, CATEGORY)."""
    if op is _sre.LITERAL:
        return [re.escape(chr(av))]
    if op is _sre.CATEGORY:
        if str(av) not in _CATEGORY_ESCAPES:
            raise _Unknown
        return [_CATEGORY_ESCAPES[str(av)]]
    if op is _sre.IN:
        out: list[str] = []
        for member_op, member in av:
            if member_op is _sre.RANGE:
                out.append(f"{re.escape(chr(member[0]))}-{re.escape(chr(member[1]))}")
            elif member_op in (_sre.LITERAL, _sre.CATEGORY):
                out += _class_items(member_op, member)
            else:  # NEGATE and the rest
                raise _Unknown
        return out
    raise _Unknown


def _first(items: Any) -> tuple[list[str], bool]:
    """(class source of the characters a match of ``items`` can start with, can it be empty)."""
    first: list[str] = []
    for op, av in items:
        if op in (_sre.ASSERT, _sre.ASSERT_NOT, _sre.AT):
            continue  # zero-width: the next item consumes the first character
        if op is _sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _Unknown  # (?i:...) inside: the guard would not share its flags
            chars, empty = _first(sub)
        elif op is _sre.ATOMIC_GROUP:
            chars, empty = _first(av)
        elif op is _sre.BRANCH:
            chars, empty = [], False
            for alternative in av[1]:
                alt_chars, alt_empty = _first(alternative)
                chars += alt_chars
                empty = empty or alt_empty
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, _high, sub = av
            chars, empty = _first(sub)
            empty = empty or low == 0
        else:
            chars, empty = _class_items(op, av), False
        first += chars
        if not empty:
            return first, False
    return first, True


def first_chars(pattern: str, flags: int = 0) -> str | None:
    """A character class matching the first character of every match of ``pattern`` (under
    the same ``flags``), or None when that cannot be told (the pattern may match empty, starts
    with ``.`` or a negated class...)."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern, flags)
        chars, empty = _first(parsed)
    except (_Unknown, re.error, RecursionError):
        return None
    if (parsed.state.flags ^ flags) & ~re.UNICODE:
        return None  # inline global flags: they must stay at the start of the pattern
    if empty or not chars:
        return None
    return "[" + "".join(dict.fromkeys(chars)) + "]"


@cache
def rx(pattern: str, flags: int = re.I) -> re.Pattern[str]:
    """Compile once (lexicon patterns are strings; callers expand ``_`` with :func:`spaced`),
    guarded by a lookahead on the possible first characters (see the module doc)."""
    guard = first_chars(pattern, flags)
    if guard is not None:
        try:
            GUARDED[pattern, flags] = compiled = re.compile(f"(?={guard})(?:{pattern})", flags)
            return compiled
        except re.error:
            pass
    return re.compile(pattern, flags)


#: (pattern, flags) -> its guarded compilation, for every pattern :func:`rx` guarded.
GUARDED: dict[tuple[str, int], re.Pattern[str]] = {}


def rx_any(patterns: list[str], flags: int = re.I) -> re.Pattern[str]:
    """One compiled alternation of several patterns."""
    return rx("|".join(f"(?:{p})" for p in patterns), flags)
