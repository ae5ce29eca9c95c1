"""Page-level findings: hijacked meta, conditional-redirect scripts, mirrors, scrapers, WAF
challenges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from re import Pattern
from urllib.parse import urlsplit

from lxml.html import HtmlElement

from crawler.extract.lexicon import load, rx, rx_any
from crawler.extract.lines import is_spammy, pinyin_glosses

#: Pinyin glosses needed to call a page a scraper copy.
PINYIN_MIN = 5
#: A challenge page has almost no visible text.
CHALLENGE_MAX_TEXT = 300
GOV_SUFFIXES = (".gov.cn", ".政务", ".gov.mo", ".gov.hk")


@dataclass(frozen=True)
class _JsLex:
    allow: Pattern[str]
    condition: Pattern[str]
    action: Pattern[str]
    target: Pattern[str]
    waf: Pattern[str]


@cache
def _js_lex() -> _JsLex:
    lex = load("dom")
    js = lex["js_redirect"]
    return _JsLex(
        allow=rx_any(lex["script_allowlist"]),
        condition=rx(js["condition"]),
        action=rx(js["action"]),
        target=rx(js["target"]),
        waf=rx_any(lex["waf_challenge"]),
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


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower() if url else ""


def _related(host: str, domain: str) -> bool:
    def bare(h: str) -> str:
        return h[4:] if h.startswith("www.") else h

    h, d = bare(host), bare(domain)
    return h == d or h.endswith("." + d) or d.endswith("." + h)


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
    domain = _host(domain) if "//" in domain else domain.split("/", 1)[0]
    host = _host(url)
    if domain and host and not _related(host, domain) and not host.endswith(GOV_SUFFIXES):
        out.append("mirror_sitedomain_mismatch")
    return out


def pinyin_scraper(text: str) -> bool:
    """``pinyin_gloss_scraper``: 網(wǎng)站-style glosses, a trick of scraper copies."""
    return pinyin_glosses(text) >= PINYIN_MIN


def is_waf_challenge(scripts: list[str], root: HtmlElement) -> bool:
    """An anti-bot challenge (瑞数 $_ts, 加速乐 __jsl_clearance, 云防御 ...) with no real text."""
    lex = _js_lex()
    if not any(code and lex.waf.search(code) for code in scripts):
        return False
    body = root.find("body")
    text = "" if body is None else "".join(t for t in body.itertext() if t and t.strip())
    return len(text) <= CHALLENGE_MAX_TEXT


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
