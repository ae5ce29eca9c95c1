"""Load the YAML lexicons (crawler/lexicons/*.yaml) once and compile their patterns."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

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


@cache
def rx(pattern: str, flags: int = re.I) -> re.Pattern[str]:
    """Compile once (lexicon patterns are strings; callers expand ``_`` with :func:`spaced`)."""
    return re.compile(pattern, flags)


def rx_any(patterns: list[str], flags: int = re.I) -> re.Pattern[str]:
    """One compiled alternation of several patterns."""
    return rx("|".join(f"(?:{p})" for p in patterns), flags)
