"""Line-level cleaning: spam verdicts and boilerplate labels, driven by crawler/lexicons/*.yaml.

Two public functions:

* :func:`spam_verdict` — ``'spam'`` (remove), ``'keep'`` or ``'review'`` (keep, and log)
  for one line; decided on shape + lexicon tier + context, never on one keyword.
* :func:`classify_line` — the boilerplate label of a line in a zone (``head``, ``body``,
  ``tail``) or None for content.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from crawler.attachments import extension_alternation
from crawler.extract.lexicon import load, rx, rx_any, spaced

SPAM, KEEP, REVIEW = "spam", "keep", "review"
ZONES = ("head", "body", "tail")

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_HAS_ZERO_WIDTH = re.compile("[" + "".join(map(chr, _ZERO_WIDTH)) + "]")
_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])")
_WS = re.compile(r"\s+")


@lru_cache(maxsize=4096)  # each line is normalised by several rules; page chrome recurs
def normalise(text: str) -> str:
    """NFKC, zero-width characters removed, ASCII lowercased, spaces inside CJK runs collapsed."""
    text = unicodedata.normalize("NFKC", text)
    if _HAS_ZERO_WIDTH.search(text):  # str.translate is slow on CJK text: only when needed
        text = text.translate(_ZERO_WIDTH)
    text = text.lower()
    return _CJK_SPACE.sub("", text).strip()


# --- spam ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SpamLex:
    s: re.Pattern[str]
    artifact: re.Pattern[str]
    m: re.Pattern[str]
    context: re.Pattern[str]
    gloss: re.Pattern[str]
    seps: re.Pattern[str]
    punct: re.Pattern[str]


@cache
def _spam_lex() -> _SpamLex:
    lex = load("spam")
    return _SpamLex(
        s=rx_any(lex["S"]),
        artifact=rx_any(lex["ARTIFACT"]),
        m=rx_any(lex["M"]),
        context=rx_any(lex["CONTEXT"]),
        gloss=rx(lex["PINYIN_GLOSS"]),
        seps=rx(lex["LIST_SEPARATORS"]),
        punct=rx(lex["SENTENCE_PUNCT"]),
    )


def _list_shaped(line: str, lex: _SpamLex) -> bool:
    """A keyword list rather than a sentence: short, no sentence punctuation, short segments."""
    if len(line) > 100 or lex.punct.search(line) or line.count("，") >= 2:
        return False
    if len(line) <= 30:
        return True
    segments = [seg for seg in lex.seps.split(line) if seg]
    return sum(1 for seg in segments if len(seg) <= 24) >= 2


@dataclass(frozen=True)
class SpamScore:
    s: int
    m: int
    artifact: bool
    context: bool
    list_shaped: bool

    @property
    def verdict(self) -> str:
        if self.artifact and self.list_shaped:
            return SPAM
        if (self.s or self.m >= 2) and self.context:
            return REVIEW
        if self.s and (self.list_shaped or self.s >= 2):
            return SPAM
        if self.m >= 2 and self.list_shaped:
            return SPAM
        if self.s or self.m >= 2:
            return REVIEW
        return KEEP


@lru_cache(maxsize=4096)
def spam_score(line: str) -> SpamScore:
    """Lexicon hits and shape of one line (normalised first)."""
    lex = _spam_lex()
    norm = lex.gloss.sub(lambda m: m.group(0)[0], normalise(line))
    return SpamScore(
        s=len(lex.s.findall(norm)),
        m=len(lex.m.findall(norm)),
        artifact=bool(lex.artifact.search(norm)),
        context=bool(lex.context.search(norm)),
        list_shaped=_list_shaped(norm, lex),
    )


def spam_verdict(line: str) -> str:
    """``'spam'`` (remove), ``'keep'`` or ``'review'`` (keep, and log) for one line of text."""
    return spam_score(line).verdict


def is_spammy(text: str) -> bool:
    """Looser test for text already known to be suspicious (hidden nodes, meta tags, <title>):
    any tier-S hit, an artifact, or two tier-M hits, whatever the shape."""
    sc = spam_score(text)
    return bool(sc.s or sc.artifact or sc.m >= 2)


def pinyin_glosses(text: str) -> int:
    """How many pinyin glosses (網(wǎng)) the text carries."""
    return len(_spam_lex().gloss.findall(text))


# --- boilerplate
# -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BoilerLex:
    footer_hard: re.Pattern[str]
    footer_soft: re.Pattern[str]
    utility_list: re.Pattern[str]
    crumb_prefix: re.Pattern[str]
    crumb_home: re.Pattern[str]
    crumb_sep: re.Pattern[str]
    control_tokens: re.Pattern[str]
    control_strong: re.Pattern[str]
    control_lines: re.Pattern[str]
    meta_labels: re.Pattern[str]
    meta_single: re.Pattern[str]
    meta_edition: re.Pattern[str]
    infotable: re.Pattern[str]
    related: re.Pattern[str]
    related_nav: re.Pattern[str]
    attachment: re.Pattern[str]
    guards: re.Pattern[str]
    date: re.Pattern[str]


@cache
def _boiler_lex() -> _BoilerLex:
    lex = load("boilerplate")

    def sp(patterns: list[str]) -> list[str]:
        return [spaced(p) for p in patterns]

    return _BoilerLex(
        footer_hard=rx_any(sp(lex["footer_hard"])),
        footer_soft=rx_any(sp(lex["footer_soft"])),
        utility_list=rx(rf"^(?:{lex['site_utilities']}(?:[\s|｜/·•]+{lex['site_utilities']})+"
                        rf"|{lex['site_widgets']})[\s|｜]*$"),
        crumb_prefix=rx(lex["breadcrumb_prefix"]),
        crumb_home=rx(lex["breadcrumb_home"]),
        crumb_sep=rx(lex["breadcrumb_sep"]),
        control_tokens=rx_any(lex["control_tokens"]),
        control_strong=rx(lex["control_strong"]),
        control_lines=rx_any(lex["control_lines"]),
        meta_labels=rx(spaced(lex["meta_labels"])),
        meta_single=rx(spaced(lex["meta_single"])),
        meta_edition=rx(lex["meta_edition"]),
        infotable=rx(spaced(lex["infotable_labels"])),
        related=rx(lex["related_starters"]),
        related_nav=rx(lex["related_nav"]),
        attachment=rx(lex["attachment"].replace("{attachment_extensions}",
                                                extension_alternation())),
        guards=rx_any(lex["guards"]),
        date=rx(r"(?:19|20)\d{2}\s?[-/.年]\s?\d{1,2}\s?[-/.月]\s?\d{1,2}"),
    )


_CONTROL_FILLER = re.compile(r"[\s\[\]【】()（）|｜:：/、,，.·>»\-_*]+")
_PROSE_END = re.compile(r"[。！？!?]$")


def _is_prose(line: str) -> bool:
    """Sentence-like: ends like a sentence and is long enough to be one."""
    return bool(_PROSE_END.search(line)) and len(line) > 25


def _uncovered(norm: str, lex: _BoilerLex) -> str:
    """What is left of a line once control tokens and metadata labels are taken out."""
    return _CONTROL_FILLER.sub("", lex.meta_labels.sub("", lex.control_tokens.sub("", norm)))


#: A fragment of a chrome run that is none of it may be a stray value this short (无, 12, 次).
STRAY_VALUE = 2
_NOT_LETTER = re.compile(r"[\W_]+")


def chrome_run(fragments: list[str]) -> bool:
    """Whether consecutive short fragments are together one control or chrome line that the
    template split over several lines (``发布时间：`` ``字体：`` ``小`` ``中`` ``大`` ``QQ空间``
    ``人人网`` ``上一篇：无``): each is covered by control tokens or metadata labels or is chrome
    itself, but a minority of stray values (:data:`STRAY_VALUE` letters at most); one carries a
    strong control token."""
    lex = _boiler_lex()
    norms = [normalise(f) for f in fragments]
    strong = stray = 0
    for norm, fragment in zip(norms, fragments, strict=True):
        label = classify_line(fragment, "body")
        covered = not _uncovered(norm, lex)
        if label in ("controls", "footer") or (covered and lex.control_strong.search(norm)):
            strong += 1
        elif label is None and not covered:
            if len(_NOT_LETTER.sub("", norm)) > STRAY_VALUE:
                return False
            stray += 1
    return strong > 0 and 2 * stray < len(norms)


def _control_line(norm: str, lex: _BoilerLex) -> bool:
    """Reading/share controls: a control sentence, or a short line (almost) covered by control
    tokens; metadata labels without a value (``发布时间： 字体： 小 中 大``) count as covered."""
    if lex.control_lines.search(norm):
        return True
    if len(norm) > 80 or not lex.control_strong.search(norm):
        return False
    rest = _uncovered(norm, lex)
    total = len(_CONTROL_FILLER.sub("", norm))
    return total > 0 and len(rest) <= 0.12 * total


def _breadcrumb(norm: str, lex: _BoilerLex, zone: str) -> bool:
    if len(norm) > 160 or _is_prose(norm):
        return False
    if lex.crumb_prefix.match(norm):
        rest = lex.crumb_prefix.sub("", norm, count=1).strip()
        return not rest or bool(lex.crumb_sep.search(rest)) or rest.startswith(("首页", "网站首页"))
    if lex.crumb_home.match(norm):
        return True
    if zone == "head" and len(lex.crumb_sep.findall(norm)) >= 1 and "。" not in norm:
        parts = [p for p in lex.crumb_sep.split(norm) if p.strip()]
        return len(parts) >= 2 and all(len(p) <= 30 for p in parts)
    return False


def classify_line(text: str, zone: str = "body") -> str | None:
    """The boilerplate label of one line, or None for content.

    ``zone`` is where the line sits on the page: ``head`` (before the article text), ``body`` or
    ``tail`` (after it; ``body_doc`` counts as ``body``). Labels: ``footer``, ``controls``,
    ``breadcrumb``, ``meta_line``, ``meta_infotable``, ``related``, ``attachment``.
    Hard anchors (ICP, 公网安备, 网站标识码, 版权所有, 主办/承办 labels ...) apply in any zone;
    contact lines and site utilities only in the head and tail zones.
    """
    norm = normalise(text)
    if not norm:
        return None
    lex = _boiler_lex()
    zone = zone if zone in ZONES else "body"
    edge = zone != "body"
    if lex.guards.search(norm):
        return None
    short = len(norm) <= 200
    if short and not _is_prose(norm) and lex.footer_hard.search(norm):
        return "footer"
    if edge and len(norm) <= 120 and lex.footer_soft.search(norm):
        return "footer"
    if len(norm) <= 120 and lex.utility_list.match(norm):
        return "footer"
    if _breadcrumb(norm, lex, zone):
        return "breadcrumb"
    if _control_line(norm, lex):
        return "controls"
    if short and lex.attachment.match(norm):
        return "attachment"
    if short and not _is_prose(norm):
        if lex.related_nav.match(norm):
            return "related"
        m = lex.related.match(norm)
        if m and (len(norm) - m.end() <= 60 or edge):
            return "related"
    if len(norm) <= 300 and not _is_prose(norm):
        info = lex.infotable.findall(norm)
        if info and (lex.infotable.match(norm) or len(info) >= 2):
            return "meta_infotable"
        labels = lex.meta_labels.findall(norm)
        if len(labels) >= 2 or (labels and lex.date.search(norm) and len(norm) <= 80):
            return "meta_line"
        if len(norm) <= 30 and lex.meta_single.match(norm):
            return "meta_line"
        if labels and not _CONTROL_FILLER.sub("", lex.meta_labels.sub("", norm)):
            return "meta_line"  # labels with no values (a template whose fields are empty)
        if lex.meta_edition.match(norm):
            return "meta_line"
    return None
