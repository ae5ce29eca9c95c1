"""Site profiles: one YAML file per portal says what to crawl (``spiders/profiles/<name>.yaml``).

A profile is data, not code: the 政务公开 columns to start from, the hosts the crawl may visit,
what an article URL looks like, optional CSS selectors, and scheduling/limits.
:func:`load_profiles` reads and validates every profile; mistakes raise :class:`ProfileError`
naming the file and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crawler.urls import canonicalize, host_in_domains, host_of, is_http_url

#: Where the bundled profiles live; ``GOVCRAWL_PROFILES`` (a file or directory) overrides it.
PROFILES_DIR = Path(__file__).resolve().parent.parent / "spiders" / "profiles"
PROFILES_ENV = "GOVCRAWL_PROFILES"

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = {"fetch"}
PAGINATION_KINDS = ("auto", "none")
SELECTOR_KEYS = ("list", "article", "next")


class ProfileError(ValueError):
    """A profile file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class Profile:
    """One portal: where its 政务公开 columns are and how far to crawl it."""

    name: str
    title: str
    start_urls: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    article_patterns: tuple[str, ...]
    list_patterns: tuple[str, ...] = ()
    selectors: dict[str, str] = field(default_factory=dict)
    cms: str = "auto"
    pagination: str = "auto"
    schedule: str = "0 6 * * *"
    render: bool = False
    revisit: bool = False
    max_pages: int = 200
    max_depth: int = 2
    hanweb_perpage: int | None = None
    notes: str = ""
    path: str | None = None

    def is_article(self, url: str) -> bool:
        """True when ``url`` matches one of the profile's article patterns."""
        return any(re.search(p, url) for p in self.article_patterns)

    def is_list(self, url: str) -> bool:
        """True when ``url`` is another column/list page the crawl should follow."""
        return any(re.search(p, url) for p in self.list_patterns)

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data (what ``govcrawl sites --json`` can print)."""
        return {
            "name": self.name,
            "title": self.title,
            "start_urls": list(self.start_urls),
            "allowed_domains": list(self.allowed_domains),
            "article_patterns": list(self.article_patterns),
            "list_patterns": list(self.list_patterns),
            "selectors": dict(self.selectors),
            "cms": self.cms,
            "pagination": self.pagination,
            "schedule": self.schedule,
            "render": self.render,
            "revisit": self.revisit,
            "max_pages": self.max_pages,
            "max_depth": self.max_depth,
        }


_FIELDS = {
    "name": str, "title": str, "start_urls": list, "allowed_domains": list,
    "article_patterns": list, "list_patterns": list, "selectors": dict, "cms": str,
    "pagination": str, "schedule": str, "render": bool, "revisit": bool, "max_pages": int,
    "max_depth": int, "hanweb_perpage": int, "notes": str,
}
_REQUIRED = ("name", "title", "start_urls", "allowed_domains", "article_patterns")


def cron_trigger(expr: str) -> Any:
    """The APScheduler trigger of a 5-field crontab expression, in UTC; ValueError if invalid."""
    from datetime import UTC

    from apscheduler.triggers.cron import CronTrigger

    if len(expr.split()) != 5:
        raise ValueError(f"expected 5 crontab fields (minute hour day month weekday), got {expr!r}")
    return CronTrigger.from_crontab(expr, timezone=UTC)


def parse_profile(data: Any, source: str = "<profile>") -> Profile:
    """Validate one profile's data (as loaded from YAML) and build a :class:`Profile`."""

    def fail(msg: str) -> ProfileError:
        return ProfileError(f"{source}: {msg}")

    if not isinstance(data, dict):
        raise fail("a profile must be a YAML mapping of field: value")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise fail(f"unknown field(s) {', '.join(unknown)}; known fields: {', '.join(_FIELDS)}")
    for key in _REQUIRED:
        if data.get(key) in (None, "", []):
            raise fail(f"missing required field {key!r}")
    for key, value in data.items():
        expected = _FIELDS[key]
        if value is None:
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise fail(f"field {key!r} must be a {expected.__name__}, got {type(value).__name__}")

    name = data["name"]
    if not NAME_RE.match(name):
        raise fail(f"name {name!r} must be lower-case letters, digits or _, "
                   "starting with a letter")
    if name in RESERVED_NAMES:
        raise fail(f"name {name!r} is reserved for a built-in spider")

    domains = tuple(str(d).lower().strip() for d in data["allowed_domains"])
    for d in domains:
        if not d or "/" in d or ":" in d:
            raise fail(f"allowed_domains entry {d!r} must be a bare host name "
                       "(no scheme, port or path)")

    start_urls = tuple(str(u) for u in data["start_urls"])
    for url in start_urls:
        if not is_http_url(url):
            raise fail(f"start_urls entry {url!r} is not an absolute http(s) URL")
        if not host_in_domains(host_of(url), domains):
            raise fail(f"start_urls entry {url!r} is outside allowed_domains {list(domains)}")

    patterns: dict[str, tuple[str, ...]] = {}
    for key in ("article_patterns", "list_patterns"):
        items = tuple(str(p) for p in data.get(key) or ())
        for p in items:
            try:
                re.compile(p)
            except re.error as exc:
                raise fail(f"{key} entry {p!r} is not a valid regular expression: {exc}") from None
        patterns[key] = items

    selectors = {str(k): str(v) for k, v in (data.get("selectors") or {}).items()}
    bad = sorted(set(selectors) - set(SELECTOR_KEYS))
    if bad:
        raise fail(f"unknown selector(s) {', '.join(bad)}; known: {', '.join(SELECTOR_KEYS)}")
    if selectors:
        from parsel import Selector

        for key, css in selectors.items():
            try:
                Selector(text="<html></html>").css(css)
            except Exception as exc:  # cssselect raises several error types
                raise fail(f"selectors.{key} {css!r} is not a valid CSS selector: {exc}") from None

    from crawler.pages import CMS_CHOICES

    cms = data.get("cms") or "auto"
    if cms not in CMS_CHOICES:
        raise fail(f"cms must be one of {', '.join(CMS_CHOICES)}, got {cms!r}")

    pagination = data.get("pagination", "auto")
    if pagination not in PAGINATION_KINDS:
        raise fail(f"pagination must be one of {', '.join(PAGINATION_KINDS)}, got {pagination!r}")

    schedule = data.get("schedule") or Profile.schedule
    try:
        cron_trigger(schedule)
    except ValueError as exc:
        raise fail(f"schedule {schedule!r} is not a valid cron expression: {exc}") from None

    limits = {}
    for key, low, high in (("max_pages", 1, 100_000), ("max_depth", 0, 20),
                           ("hanweb_perpage", 1, 500)):
        value = data.get(key)
        if value is None:
            continue
        if not low <= value <= high:
            raise fail(f"{key} must be between {low} and {high}, got {value}")
        limits[key] = value

    return Profile(
        name=name,
        title=data["title"].strip(),
        start_urls=start_urls,
        allowed_domains=domains,
        article_patterns=patterns["article_patterns"],
        list_patterns=patterns["list_patterns"],
        selectors=selectors,
        cms=cms,
        pagination=pagination,
        schedule=schedule,
        render=bool(data.get("render", False)),
        revisit=bool(data.get("revisit", False)),
        notes=(data.get("notes") or "").strip(),
        path=source,
        **limits,
    )


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and validate one profile file; its ``name`` must match the file name."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                           f"offset {exc.start}): a profile is a YAML text file") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: invalid YAML: {_yaml_problem(exc)}") from None
    profile = parse_profile(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name {profile.name!r} must match the file name {path.stem!r}")
    return profile


def profile_paths(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The profile files under ``path`` (a file or a directory; default: bundled profiles)."""
    if path is None:
        path = os.environ.get(PROFILES_ENV) or PROFILES_DIR
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ProfileError(f"{path}: no such profile file or directory")
    return sorted(p for p in path.glob("*.y*ml") if not p.name.startswith(("_", ".")))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (line, column), not the parser's dump."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


@dataclass(frozen=True)
class ProfileSet:
    """Every profile file read: the valid profiles by name, and the broken ones by file stem."""

    valid: dict[str, Profile]
    invalid: dict[str, ProfileError]

    def get(self, name: str) -> Profile:
        """The profile ``name``; its own :class:`ProfileError` if that file is broken."""
        if name in self.invalid:
            raise self.invalid[name]
        return self.valid[name]


def read_profiles(path: str | os.PathLike[str] | None = None) -> ProfileSet:
    """Read every profile, keeping a broken file's error instead of failing the whole set.

    A broken profile is reported only where it is used (``crawl NAME``, ``sites``), so one bad file
    beside good ones does not stop the good ones.
    """
    valid: dict[str, Profile] = {}
    invalid: dict[str, ProfileError] = {}
    for p in profile_paths(path):
        try:
            profile = load_profile(p)
            if profile.name in valid:
                raise ProfileError(f"{p}: profile name {profile.name!r} already used by "
                                   f"{valid[profile.name].path}")
        except ProfileError as exc:
            invalid[p.stem] = exc
            continue
        valid[profile.name] = profile
    return ProfileSet(valid, invalid)


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, Profile]:
    """All profiles by name, validated; the first broken file raises its :class:`ProfileError`."""
    profiles = read_profiles(path)
    for error in profiles.invalid.values():
        raise error
    return profiles.valid


def profile_for_url(url: str, profiles: dict[str, Profile]) -> Profile | None:
    """The profile a URL belongs to, so that ``govcrawl fetch URL`` files it as a crawl would.

    Candidates are the profiles whose ``allowed_domains`` cover the URL's host; among them one
    whose article or list patterns (or start URLs) match the URL wins over one that only covers
    the host, then the most specific (longest) matching domain, then the name. None when no
    profile covers the host."""
    host = host_of(url)
    try:
        canonical = canonicalize(url)
    except ValueError:
        canonical = url

    def rank(profile: Profile) -> tuple[bool, int, str]:
        matched = (profile.is_article(url) or profile.is_list(url)
                   or canonical in {canonicalize(u) for u in profile.start_urls})
        longest = max(len(d) for d in profile.allowed_domains if host_in_domains(host, [d]))
        return (not matched, -longest, profile.name)

    candidates = [p for p in profiles.values() if host_in_domains(host, p.allowed_domains)]
    return min(candidates, key=rank) if candidates else None
