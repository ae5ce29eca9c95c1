"""Lexicon patterns guarded by their possible first characters match exactly what they did plain."""

from __future__ import annotations

import json
import re

import pytest
from lxml import html as lxml_html

from crawler.extract import extract
from crawler.extract.lexicon import GUARDED, first_chars, load, rx, rx_any
from tests.conftest import CLEANING_CASES, CORPUS, SEEDS


@pytest.mark.parametrize(("pattern", "matches", "misses"), [
    ("abc|x+y", ["abc", "xxy"], ["bc", "y"]),
    ("(?<![a-z])bet365(?![a-z])", ["bet365", "a bet365 b"], ["abet365"]),
    (r"(?:qq|微信)\s?[:：]?\s?\d{5,}", ["QQ: 12345", "微信12345"], ["q 12345"]),
    ("(?:最新|永久)?(?:网址|域名)", ["网址", "永久域名"], ["网"]),
])
def test_first_chars_covers_every_match(pattern, matches, misses):
    guard = first_chars(pattern, re.I)
    assert guard is not None
    for text in matches:
        assert re.search(guard, text, re.I), (pattern, text)
        assert rx(pattern).search(text), (pattern, text)
    for text in misses:
        assert not rx(pattern).search(text), (pattern, text)


@pytest.mark.parametrize("pattern", ["a*", "x?|y", ".abc", "[^a]b", "(?i:a)b", "(?s)ab"])
def test_patterns_that_may_start_anywhere_are_not_guarded(pattern):
    assert first_chars(pattern, re.I) is None
    assert rx(pattern).pattern == pattern


def _real_lines() -> list[str]:
    lines: list[str] = []
    for page in sorted((CORPUS / "pages").glob("*.html")):
        lines += lxml_html.fromstring(page.read_bytes()).text_content().splitlines()
    for case in map(json.loads, CLEANING_CASES.read_text(encoding="utf-8").splitlines()):
        lines += str(case.get("input") or "").splitlines()
    for seed in sorted(SEEDS.glob("*.txt")):
        lines += seed.read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in lines if line.strip()]
    return [*lines, *(line.lower() for line in lines)]


def test_every_guarded_pattern_matches_as_the_plain_pattern_on_real_text():
    spam = load("spam")
    rx_any(spam["S"]), rx_any(spam["M"])
    for page in sorted((CORPUS / "pages").glob("*.html"))[:20]:  # compiles the lexicons in use
        extract(page.read_bytes(), "http://www.example.gov.cn/a.html", {}, 200)
    assert len(GUARDED) >= 10
    lines = _real_lines()
    assert len(lines) > 1000
    hits = 0
    for (pattern, flags), guarded in GUARDED.items():
        plain = re.compile(pattern, flags)
        assert guarded.groups == plain.groups
        for line in lines:
            got = [(m.span(), m.groups()) for m in guarded.finditer(line)]
            assert got == [(m.span(), m.groups()) for m in plain.finditer(line)], (pattern, line)
            hits += bool(got)
    assert hits > 100  # the comparison saw matches, not only misses
