"""Chinese two-character words, searchable through an index.

FTS5's ``trigram`` tokenizer indexes every three-character substring, so a word of two
characters (``征地``, ``公告``, ``预算``: most Chinese words) cannot use it. Beside the trigram
index the builder keeps ``documents_bigrams``: for every run of CJK characters in a document's
title, text and attachment text, each adjacent pair of characters as one token (a contentless
FTS5 table, ``detail=none``: document ids only, no positions, small). A two-character CJK word
occurs in a document exactly when its pair is one of those tokens.
"""

from __future__ import annotations

import operator
import re

TABLE = "documents_bigrams"
#: SQL function the index's triggers call (registered by ``open_index`` on writing connections).
FUNCTION = "govcrawl_cjk_bigrams"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RUN = re.compile(f"[{_CJK}]{{2,}}")
_CJK_PAIR = re.compile(f"^[{_CJK}]{{2}}$")


def cjk_bigrams(*texts: str | None) -> str:
    """The space-separated adjacent character pairs of every CJK run in ``texts``."""
    pairs: list[str] = []
    for text in texts:
        if text:
            for run in _CJK_RUN.findall(text):
                pairs.extend(map(operator.add, run, run[1:]))
    return " ".join(pairs)


def is_cjk_pair(word: str) -> bool:
    """True for a word of exactly two CJK characters (answered by the bigram index)."""
    return bool(_CJK_PAIR.match(word))
