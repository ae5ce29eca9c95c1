"""URLs: the one owner of canonical form, domain matching and crawler-trap bounds.

Everything that compares, stores or requests URLs goes through here (the spiders, the dedup state,
``govcrawl fetch``'s profile lookup, the cassette builder), so they all agree on what a URL is.
Canonicalisation is w3lib's :func:`~w3lib.url.canonicalize_url` (sorted query, normalised
percent-encoding, no fragment) after dropping session, cache-buster and calendar parameters;
the parameter lists are data (``crawler/tables/urls.yaml``).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from crawler.tables import load_table


@cache
def _dropped_params() -> frozenset[str]:
    table = load_table("urls")
    return frozenset(p.lower() for p in [*table["drop_params"], *table["calendar_params"]])


@cache
def _path_param_re() -> re.Pattern[str]:
    names = "|".join(map(re.escape, load_table("urls")["drop_path_params"]))
    return re.compile(rf";(?:{names})=[^/?#]*", re.I)


#: URLs that :func:`canonicalize` returns unchanged, recognised without parsing them: http(s), a
#: lower-case host, no query, fragment, path parameter or percent-escape, no ``.``/``..`` segment
#: and only characters w3lib leaves as they are (tests/test_urls.py checks the two paths agree).
_ALREADY_CANONICAL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~!$&'()*+,=:@-]*)+")


def canonicalize(url: str) -> str:
    """Canonical form of ``url``: w3lib canonicalisation, lower-case host, no fragment, no session,
    cache-buster or calendar parameters (``;jsessionid=`` path parameters included)."""
    simple = _ALREADY_CANONICAL.fullmatch(url)
    if simple and int(simple["port"] or 0) <= 65535:
        return url
    return _canonicalize(url)


def _canonicalize(url: str) -> str:
    """:func:`canonicalize` by parsing ``url``."""
    drop = _dropped_params()
    parts = urlsplit(url)
    path = _path_param_re().sub("", parts.path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in drop]
    rebuilt = urlunsplit((parts.scheme, parts.netloc.lower(), path or "/", urlencode(query), ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def join(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``; None when that is no usable URL (a malformed IPv6
    host, a port that is not a number 0-65535): one bad link must not cost the page's others."""
    try:
        url = urljoin(base, href)
        urlsplit(url).port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return url


def is_http_url(url: str) -> bool:
    """True when ``url`` is an absolute http(s) URL with a host (and a valid port, if any)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class BadURL(ValueError):
    """A URL that cannot be requested, with what is wrong in words (one line)."""


#: A host name label (letters, digits, hyphens inside; ``_`` as browsers accept it), after IDNA.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_BRACKETED = re.compile(r"\[([^\[\]]*)\](?::(.*))?")


def check_url(url: str, max_length: int | None = None) -> str:
    """``url`` when it can be requested: an absolute http(s) URL of at most ``max_length``
    characters, whose host is a valid name, IPv4 or bracketed IPv6 address and whose port, if
    any, is 1-65535; else :class:`BadURL` saying what is wrong (checked before any request)."""
    if max_length and len(url) > max_length:
        raise BadURL(f"URL is {len(url):,} characters long, more than the {max_length:,} a "
                     "request may have (URLLENGTH_LIMIT)")
    shown = url if len(url) <= 200 else url[:200] + "…"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # urlsplit checks brackets and what is inside them
        unbalanced = " (a '[' without its ']')" if "Invalid IPv6" in str(exc) else ""
        raise BadURL(f"bad IPv6 address{unbalanced}: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadURL(f"not an http(s) URL: {shown!r}")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        raise BadURL(f"a user name or password in the URL is not supported: {shown!r}")
    if hostport.startswith("["):
        bracketed = _BRACKETED.fullmatch(hostport)
        if bracketed is None:
            raise BadURL(f"bad IPv6 address {hostport!r}: expected [address] or [address]:port")
        host, port = bracketed.group(1), bracketed.group(2)
        try:
            ipaddress.IPv6Address(unquote(host))
        except ValueError:
            raise BadURL(f"bad IPv6 address [{host}]") from None
    else:
        host, _, port = hostport.partition(":")
        if port == "" and not hostport.endswith(":"):
            port = None
        _check_host_name(host)
    if port:
        if not port.isdigit():
            raise BadURL(f"port {port!r} is not a number")
        if not 1 <= int(port) <= 65535:
            raise BadURL(f"port {int(port)} is out of range (1-65535)")
    return url


def _check_host_name(host: str) -> None:
    """A DNS name (IDNA for non-ASCII) or a dotted IPv4 address, as browsers accept them."""
    if not host:
        raise BadURL("the URL has no host")
    shown = host if len(host) <= 80 else host[:80] + "…"
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadURL(f"bad host name {shown!r}") from None
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadURL(f"bad host name {shown!r}")
    if labels[-1].isdigit():  # ends in a number: an IPv4 address, as a browser reads it
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise BadURL(f"bad IPv4 address {shown!r}") from None


def url_extension(url: str) -> str:
    """Lower-case file extension of the URL's path (``""`` when none, or the URL is malformed)."""
    try:
        last = urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:
        return ""
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def host_of(url: str) -> str:
    """The URL's host name, lower case, without port (``""`` when it has none or is malformed)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def host_in_domains(host: str, domains: Iterable[str]) -> bool:
    """True when ``host`` is one of ``domains`` or a subdomain of one (ports never count)."""
    host = host.lower()
    return bool(host) and any(host == d or host.endswith("." + d)
                              for d in (d.lower() for d in domains))


def host_allowed(url: str, domains: Iterable[str]) -> bool:
    """True when the URL's host is one of ``domains`` or a subdomain of one."""
    return host_in_domains(host_of(url), domains)


def hosts_related(host: str, other: str) -> bool:
    """True when two hosts are the same site: equal, or one a subdomain of the other, ignoring a
    leading ``www.`` (``www.a.gov.cn`` ~ ``a.gov.cn`` ~ ``zwgk.a.gov.cn``)."""

    def bare(h: str) -> str:
        h = h.lower()
        return h[4:] if h.startswith("www.") else h

    h, o = bare(host), bare(other)
    return bool(h and o) and (host_in_domains(h, [o]) or host_in_domains(o, [h]))


class TrapGuard:
    """Bounds crawler traps: caps the number of distinct query strings per path (calendar and
    parameter loops). Call :meth:`allow` for each canonical URL about to be requested."""

    def __init__(self, max_query_variants: int | None = None) -> None:
        self.max_query_variants = max_query_variants or int(
            load_table("urls")["max_query_variants"])
        self._variants: dict[str, set[str]] = defaultdict(set)
        self.dropped = 0

    def allow(self, url: str) -> bool:
        """False when ``url`` is one query variant too many for its path (counted in
        :attr:`dropped`)."""
        parts = urlsplit(url)
        if not parts.query:
            return True
        key = f"{parts.netloc}{parts.path}"
        seen = self._variants[key]
        if parts.query in seen:
            return True
        if len(seen) >= self.max_query_variants:
            self.dropped += 1
            return False
        seen.add(parts.query)
        return True
