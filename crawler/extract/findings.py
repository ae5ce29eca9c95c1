"""Page-level findings: hijacked meta, conditional-redirect scripts, mirrors, scrapers.

Challenge (anti-bot) pages are :mod:`crawler.challenges`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from re import Pattern

from crawler.extract.lexicon import load, rx, rx_any
from crawler.extract.lines import is_spammy, pinyin_glosses
from crawler.urls import host_of, hosts_related

#: Pinyin glosses needed to call a page a scraper copy.
PINYIN_MIN = 5
GOV_SUFFIXES = (".gov.cn", ".政务", ".gov.mo", ".gov.hk")


@dataclass(frozen=True)
class _JsLex:
    allow: Pattern[str]
    condition: Pattern[str]
    action: Pattern[str]
    target: Pattern[str]


@cache
def _js_lex() -> _JsLex:
    lex = load("dom")
    js = lex["js_redirect"]
    return _JsLex(
        allow=rx_any(lex["script_allowlist"]),
        condition=rx(js["condition"]),
        action=rx(js["action"]),
        target=rx(js["target"]),
    )


def script_findings(scripts: list[str]) -> list[str]:
    """``js_conditional_redirect``: a script tests document.referrer / navigator.userAgent for
    search
    engines or mobiles and then navigates or writes. Allowlisted gov widgets are skipped."""
    lex = _js_lex()
    for code in scripts:
        if not code or lex.allow.search(code):
            continue
        if lex.condition.search(code) and lex.action.search(code) and lex.target.search(code):
            return ["js_conditional_redirect"]
    return []


def meta_findings(tags: Mapping[str, str], url: str) -> list[str]:
    """``meta_hijack`` (spam in keywords/description) and ``mirror_sitedomain_mismatch`` (a
    government
    page, by its SiteDomain meta, served from an unrelated non-government host)."""
    out = []
    low = {k.lower(): v for k, v in tags.items()}
    for name in ("keywords", "description"):
        if low.get(name) and is_spammy(low[name]):
            out.append("meta_hijack")
            break
    domain = (low.get("sitedomain") or "").strip().lower()
    domain = host_of(domain) if "//" in domain else domain.split("/", 1)[0]
    host = host_of(url) if url else ""
    if domain and host and not hosts_related(host, domain) and not host.endswith(GOV_SUFFIXES):
        out.append("mirror_sitedomain_mismatch")
    return out


def pinyin_scraper(text: str) -> bool:
    """``pinyin_gloss_scraper``: 網(wǎng)站-style glosses, a trick of scraper copies."""
    return pinyin_glosses(text) >= PINYIN_MIN


def cloaking_findings(variants: Mapping[str, str]) -> list[str]:
    """Compare the main text fetched as different clients (``browser`` is the reference; other keys
    name the variant: ``baiduspider``, ``mobile_baidu_ref`` ...). ``cloaking:<variant>`` when a
    variant carries tier-S spam that the browser fetch does not."""
    ref = variants.get("browser", "")
    ref_spam = any(is_spammy(line) for line in ref.splitlines() if line.strip())
    out = []
    for name, text in variants.items():
        if name == "browser" or ref_spam:
            continue
        if any(is_spammy(line) for line in (text or "").splitlines() if line.strip()):
            out.append(f"cloaking:{name}")
    return out
