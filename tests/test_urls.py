"""crawler.urls: the one owner of canonical URLs, domain matching and trap bounds."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from crawler import urls
from crawler.urls import BadURL, check_url
from tests.conftest import REPO


def test_canonicalize_drops_sessions_and_calendar_params():
    c = urls.canonicalize
    assert c("http://A.gov.cn/x/index.jsp;jsessionid=ABC123?b=2&a=1#top") == \
        "http://a.gov.cn/x/index.jsp?a=1&b=2"
    assert c("http://a.gov.cn/list?page=2&_=1699999999&date=2024-01-01") == \
        "http://a.gov.cn/list?page=2"


def test_trap_guard_caps_query_variants():
    guard = urls.TrapGuard(max_query_variants=3)
    allowed = [guard.allow(f"http://a.gov.cn/cal?d={i}") for i in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    assert guard.allow("http://a.gov.cn/cal?d=1")  # already seen variants stay allowed
    assert guard.allow("http://a.gov.cn/other.html")
    assert guard.dropped == 7


def test_domain_match_ignores_port_and_case_and_needs_a_dot_boundary():
    domains = ["gsj.wuhan.gov.cn", "atxlyj.cn"]
    assert urls.host_allowed("http://gsj.wuhan.gov.cn:9091/zwgk/", domains)
    assert urls.host_allowed("https://WWW.ATXLYJ.CN/xxgk/", domains)
    assert not urls.host_allowed("https://evilatxlyj.cn/", domains)
    assert not urls.host_allowed("https://atxlyj.cn.evil.com/", domains)
    assert not urls.host_allowed("mailto:a@atxlyj.cn", domains)


def test_hosts_related():
    assert urls.hosts_related("www.a.gov.cn", "a.gov.cn")
    assert urls.hosts_related("zwgk.a.gov.cn", "www.a.gov.cn")
    assert not urls.hosts_related("a.gov.cn", "b.gov.cn")
    assert not urls.hosts_related("", "a.gov.cn")


def test_join_and_is_http_url_refuse_malformed_urls():
    base = "https://www.atxlyj.cn/xxgk/bmwj/index.html"
    assert urls.join(base, "202001/t20200102_724010.html") == \
        "https://www.atxlyj.cn/xxgk/bmwj/202001/t20200102_724010.html"
    assert urls.join(base, "http://[2001:db8::1/a.html") is None
    assert urls.join(base, "http://www.atxlyj.cn:8o/b.html") is None
    assert urls.join(base, "http://www.atxlyj.cn:99999/b.html") is None
    assert urls.is_http_url("http://gsj.wuhan.gov.cn:9091/zwgk/")
    for bad in ("ftp://a.gov.cn/x", "http:///x", "http://a.gov.cn:abc/", "http://[x/", "/x.html"):
        assert not urls.is_http_url(bad), bad
    # the other helpers answer "no host / no extension" instead of raising
    assert urls.host_of("http://[2001:db8::1/a.pdf") == ""
    assert urls.url_extension("http://[x/a.pdf") == ""
    assert not urls.host_allowed("http://[atxlyj.cn/a.html", ["atxlyj.cn"])


def test_one_definition_each():
    """canonicalize / host matching / joining / TrapGuard are defined in crawler/urls.py only."""
    out = subprocess.run(
        ["grep", "-rnE", r"^\s*(def (canonicalize|host_allowed|_host_allowed|_related|host_of"
         r"|host_in_domains|hosts_related|url_extension|is_http_url|join)\b|class TrapGuard)",
         "crawler", "spiders", "pipelines", "cassettes"],
        cwd=REPO, capture_output=True, text=True, check=False).stdout.splitlines()
    assert {line.split(":", 1)[0] for line in out} == {"crawler/urls.py"}, out


def test_dedup_does_not_import_listing():
    code = ("import sys, crawler.dedup, crawler.dedup.state; "
            "sys.exit('crawler.listing' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


@pytest.mark.parametrize("url", [
    "http://www.gov.cn/zhengce/2023-01/01/content_1.htm", "https://www.sz.gov.cn:8080/a?b=1#c",
    "http://政府.中国/", "http://[::1]:8080/x", "http://[fe80::1%25eth0]/", "http://1.2.3.4/",
    "http://localhost/", "http://a_b.gov.cn/", "http://www.gov.cn./", "http://www.gov.cn:/"])
def test_check_url_accepts_what_browsers_request(url):
    assert check_url(url, 2083) == url


@pytest.mark.parametrize(("url", "words"), [
    ("http://www.gov.cn/" + "a" * 3000, "3,018 characters long"),
    ("http://a.gov.cn:65536/", "out of range"), ("http://[::1/", "without its ']'"),
    ("http://[::1]x/", "bad IPv6 address"), ("http://[1.2.3.4]/", "bad IPv6 address"),
    ("http://a-.gov.cn/", "bad host name"), ("http://" + "a" * 64 + ".cn/", "bad host name"),
    ("http://1.2.3.4.5/", "bad IPv4 address"), ("mailto:a@b.cn", "not an http(s) URL")])
def test_check_url_says_what_is_wrong(url, words):
    with pytest.raises(BadURL, match=re.escape(words)):
        check_url(url, 2083)


def _real_urls() -> set[str]:
    """Every URL in the bundled cassettes and corpus pages (links included)."""
    pattern = re.compile(r"""https?://[^\s"'<>\\]+""")
    found: set[str] = set()
    for path in [*(REPO / "cassettes").glob("*.yaml"), *(REPO / "tests/corpus/pages").glob("*")]:
        found.update(pattern.findall(path.read_bytes().decode("utf-8", "replace")))
    return found


def _generated_urls(count: int, seed: int = 13) -> list[str]:
    """URLs built from the parts that canonicalisation changes or keeps, at random."""
    import random

    rng = random.Random(seed)
    schemes = ["http", "https", "HTTP", "Https", "ftp"]
    hosts = ["www.gov.cn", "WWW.Gov.CN", "a.gov.cn.", "xn--fiq228c.gov.cn", "10.0.0.1", "a_b.cn",
             "-a.cn", "a-.cn", "a..cn", "政府.cn", "[::1]", "user@a.gov.cn"]
    ports = ["", "", ":80", ":8080", ":0", ":080", ":65535", ":65536", ":99999", ":"]
    pieces = ["art", "2024", "t20240101_123.html", "index.shtml", ".", "..", "...", ".x", "x.",
              "%41", "%2F", "%e4%b8%ad", "%", ";jsessionid=1", ";v=2", "?a=1", "?", "#top", "#",
              "中文", " ", '"', "<", ">", "\\", "|", "^", "`", "{", "}", "[", "]", "~", "_", "-",
              "!", "$", "&", "'", "(", ")", "*", "+", ",", "=", ":", "@", "A", "z", "0", ""]
    out = []
    for _ in range(count):
        segments = ["".join(rng.choice(pieces) for _ in range(rng.randrange(3)))
                    for _ in range(rng.randrange(4))]
        path = "".join(rng.choice(["/", "/", "//", ""]) + segment for segment in segments)
        out.append(f"{rng.choice(schemes)}://{rng.choice(hosts)}{rng.choice(ports)}{path}")
    return out


def test_the_canonical_fast_path_agrees_with_parsing():
    real = _real_urls()
    assert len(real) > 500
    samples = [*real, *_generated_urls(20_000)]

    def outcome(canonicalize, url):
        try:
            return canonicalize(url)
        except ValueError as exc:  # what a malformed URL raises, either way
            return type(exc)

    differ = [u for u in samples if outcome(urls.canonicalize, u) != outcome(urls._canonicalize, u)]
    assert differ == []
    # and it is taken: most real article URLs are already canonical
    fast = [u for u in real if urls._ALREADY_CANONICAL.fullmatch(u)]
    assert len(fast) > len(real) / 3
    assert urls._ALREADY_CANONICAL.fullmatch("http://www.gov.cn/xxgk/202401/t20240101_1.html")
