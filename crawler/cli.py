"""The ``govcrawl`` command: extract, fetch, crawl, sites, archive, schedule.

Exit codes: 0 success, 1 the work failed (dead site, 404, nothing extracted), 2 bad input or
configuration. Errors are one line on stderr, never a traceback (``GOVCRAWL_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or configuration: reported as one line, exit code 2."""


# --- extract ----------------------------------------------------------------------------------


def cmd_extract(args: argparse.Namespace) -> int:
    from crawler.extract.attachments import extract_bytes

    path = Path(args.file)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    url = args.url or path.resolve().as_uri()
    headers = {"Content-Type": args.content_type} if args.content_type else None
    doc = extract_bytes(body, url, headers)  # HTML page or document file, told by its bytes
    if doc.format != "html" and not doc.is_document:  # an image, archive, unreadable file ...
        if args.json:
            print_document(doc.to_dict(), as_json=True)
        why = doc.meta.get("error") or (
            f"{doc.format}, no text reader" if "no_reader" in doc.findings else doc.format)
        print(f"govcrawl: error: {path} is not a document ({why})", file=sys.stderr)
        return EXIT_FAILED
    print_document(doc.to_dict(), as_json=args.json)
    if not doc.is_document:
        why = ", ".join(doc.findings) or "no content"
        print(f"govcrawl: note: {url} is not a document ({why})", file=sys.stderr)
    return EXIT_OK


def print_document(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if data.get("title"):
        print(data["title"])
        print()
    print(data.get("text", ""))


# --- fetch ------------------------------------------------------------------------------------


def validate_url(url: str, settings: Any) -> str:
    """``url`` if it can be requested (:func:`crawler.urls.check_url`, within Scrapy's
    ``URLLENGTH_LIMIT``), else a one-line :class:`UsageError`, before anything is fetched."""
    from crawler.urls import BadURL, check_url

    try:
        return check_url(url, settings.getint("URLLENGTH_LIMIT"))
    except BadURL as exc:
        raise UsageError(str(exc)) from None


def common_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings shared by fetch and crawl, from their options."""
    overrides: dict[str, Any] = {}
    for option in args.set or []:
        name, sep, value = option.partition("=")
        if not sep or not name:
            raise UsageError(f"-s expects NAME=VALUE, got {option!r}")
        overrides[name] = value
    if getattr(args, "archive", None):
        overrides["GOVCRAWL_ARCHIVE"] = validate_archive_uri(args.archive)
    if getattr(args, "state_dir", None):
        overrides["GOVCRAWL_STATE_DIR"] = args.state_dir
    if getattr(args, "record_mode", None):
        overrides["GOVCRAWL_RECORD_MODE"] = args.record_mode
    if args.verbose:
        overrides["LOG_LEVEL"] = "DEBUG" if args.verbose > 1 else "INFO"
    return overrides


def log_to_file(args: argparse.Namespace, settings: Any, name: str) -> Path | None:
    """Send Scrapy's log to ``<state dir>/logs/<name>.log`` unless -v or -s LOG_FILE is given."""
    explicit = {o.partition("=")[0] for o in args.set or []}
    if args.verbose or "LOG_FILE" in explicit:
        return None
    path = Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl") / "logs" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings.set("LOG_FILE", str(path), priority="cmdline")
    settings.set("LOG_FILE_APPEND", False, priority="cmdline")
    if "LOG_LEVEL" not in explicit:
        settings.set("LOG_LEVEL", "INFO", priority="cmdline")
    return path


def validate_archive_uri(uri: str) -> str:
    from crawler.archive import ArchiveConfigError, validate_uri

    try:
        return validate_uri(uri)
    except ArchiveConfigError as exc:
        raise UsageError(str(exc)) from None


def check_extract_workers(settings: Any) -> None:
    """Refuse a ``GOVCRAWL_EXTRACT_WORKERS`` that is neither ``auto`` nor a count (exit 2)."""
    from pipelines.extract import extract_workers

    try:
        extract_workers(settings.get("GOVCRAWL_EXTRACT_WORKERS"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_archive(settings: Any) -> None:
    """Refuse to start when the archive is misconfigured (no such bucket, refused credentials).

    A remote store that is merely unreachable is fine: the crawl spools and uploads later. A local
    archive path that is not a writable directory is a mistake to fix now, not an outage.
    """
    from crawler.archive import ArchiveConfigError, StoreError, open_archive

    try:
        archive = open_archive(settings=settings)
        try:
            archive.ping()
            reachable = True
        except StoreError as exc:
            if archive.store.scheme == "file":
                raise UsageError(str(exc)) from None
            reachable = False
        try:
            check_state(settings, archive, reachable)
        finally:
            archive.close()
    except ArchiveConfigError as exc:
        raise UsageError(str(exc)) from None


def check_state(settings: Any, archive: Any, reachable: bool) -> None:
    """Refuse a dedup state that belongs to another archive, or an empty one beside documents."""
    from crawler.archive import StoreError
    from crawler.dedup import bind_to_archive, open_state

    state = open_state(settings)
    state_dir = str(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
    try:
        try:
            bind_to_archive(state, archive, state_dir, reachable)
        except StoreError:  # the store failed between its ping and now: an outage
            bind_to_archive(state, archive, state_dir, reachable=False)
    finally:
        state.close()


def fetch_site(url: str) -> str | None:
    """The site (profile name) a fetched URL is filed under, as a crawl would file it; None when
    no valid profile covers it (the page is then filed under its host name)."""
    from crawler.profiles import profile_for_url, read_profiles

    profile = profile_for_url(url, read_profiles().valid)
    return profile.name if profile is not None else None


def cmd_fetch(args: argparse.Namespace) -> int:
    from crawler.runner import project_settings, run_spiders

    overrides = {"LOG_LEVEL": "CRITICAL", **common_overrides(args)}  # we print the one error line
    # One page: extraction inline, a worker pool would cost more to start than it saves.
    overrides.setdefault("GOVCRAWL_EXTRACT_WORKERS", 0)
    if args.cassette:
        overrides["GOVCRAWL_CASSETTE"] = args.cassette
    # One page: no progress line; a crawl report and the dedup state only when something is
    # archived. (A dict setting given here replaces the project's: start from the declared one.)
    from crawler import settings as declared

    overrides["EXTENSIONS"] = {**declared.EXTENSIONS, "crawler.extensions.Progress": None}
    if not args.archive:  # nothing to keep: extraction only
        overrides["ITEM_PIPELINES"] = {"pipelines.extract.ExtractionPipeline": 100}
        overrides["EXTENSIONS"].update({"crawler.extensions.CrawlReport": None,
                                        "crawler.dedup.service.StateService": None})
    settings = project_settings(overrides)
    url = validate_url(args.url, settings)
    check_extract_workers(settings)
    if args.cassette:
        check_cassettes([Path(args.cassette)], settings.get("GOVCRAWL_RECORD_MODE") or "none")
    if args.archive:  # keep a log of what was archived; the terminal gets only the one error line
        log_to_file(args, settings, "fetch")
        check_archive(settings)
    [result] = run_spiders([("fetch", {"url": url, "site": fetch_site(url)})], settings,
                           keep_items=True)
    if result.error:
        raise FetchFailed(result.error)
    if not result.items:
        reason = "page is not a document (challenge page or no content)"
        if result.stats.get("item_dropped_count"):
            raise FetchFailed(reason)
        raise FetchFailed(f"nothing extracted from {url}")
    item = result.items[0]
    data = item.document.to_dict()
    if item.dedup is not None:
        data["dedup"] = item.dedup.to_dict()
    print_document(data, as_json=args.json)
    return EXIT_OK


class FetchFailed(Exception):
    """The fetch ran but produced no document: exit code 1."""


class WorkFailed(Exception):
    """The work could not be done (a service it needs is down), the input was fine: one line,
    exit code 1."""


# --- crawl ------------------------------------------------------------------------------------


def check_cassettes(paths: list[Path], record_mode: str) -> None:
    """Refuse, before crawling, a cassette that is not a usable vcrpy cassette, or none at all
    when the crawl may only replay (exit 2)."""
    from crawler.cassette import load_cassette

    for path in paths:
        if path.exists():
            load_cassette(path, record_mode)  # CassetteError names the file and the problem
        elif record_mode == "none":
            raise UsageError(f"cassette not found: {path} (replay only; --record-mode once "
                             "would record it)")


def available_spiders(settings: Any) -> list[str]:
    from scrapy.spiderloader import get_spider_loader

    return sorted(name for name in get_spider_loader(settings).list() if name != "fetch")


@contextlib.contextmanager
def stdout_may_close() -> Iterator[None]:
    """Let the reader of our stdout stop early (``govcrawl … | head``): the rest of the output is
    dropped, never an error (the work it reports on is done)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        os.close(devnull)


def spooled_writes(settings: Any) -> int:
    """Spool entries left for the crawl's archive once every crawler closed (crawl reports
    included, which are written after the archive pipeline closes)."""
    from crawler.archive import open_archive
    from crawler.archive.spool import Spool

    uri = open_archive(settings=settings).uri
    return len(Spool(Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl") / "spool").ids(uri))


def crawl_report(result: Any) -> dict[str, Any]:
    """The report the crawl's :class:`~crawler.extensions.CrawlReport` built (and logged and
    archived); a crawl that never opened (refused at start) has none: one from its stats."""
    from crawler.report import build_report

    built = result.stats.get("govcrawl/report")
    if built:
        return json.loads(built)
    return build_report(result.spider, result.stats, result.stats.get("govcrawl/crawl_id"))


def check_cluster(settings: Any) -> None:
    """With ``GOVCRAWL_REDIS_URL`` (``--redis``): a Redis URL that answers, and an archive every
    worker shares (S3); the dedup state defaults to the same Redis."""
    url = settings.get("GOVCRAWL_REDIS_URL")
    if not url:
        return
    import redis

    if urlsplit(str(url)).scheme not in ("redis", "rediss") or not urlsplit(str(url)).hostname:
        raise UsageError(f"--redis: not a redis URL (redis://HOST:PORT/DB): {url!r}")
    archive = str(settings.get("GOVCRAWL_ARCHIVE") or "")
    if not archive.startswith("s3://"):
        raise UsageError(f"--redis: the archive {archive!r} is local to this machine; the workers "
                         "of a cluster share one archive: give --archive s3://bucket/prefix/")
    from crawler.cluster import OUTAGE_ERRORS

    try:
        client = redis.Redis.from_url(str(url), socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except redis.AuthenticationError as exc:  # a ConnectionError to redis-py, bad config to us
        raise UsageError(f"--redis: Redis at {url} refused us ({exc})") from None
    except OUTAGE_ERRORS as exc:  # down or starting: the work fails, the command was right
        raise WorkFailed(f"--redis: cannot reach Redis at {url} ({exc}): nothing crawled; start "
                         "the worker again once Redis answers (running workers wait for it)"
                         ) from None
    except (redis.RedisError, ValueError) as exc:  # a bad database number ...
        raise UsageError(f"--redis: Redis at {url} refused us ({exc})") from None
    if not settings.get("GOVCRAWL_DEDUP_STATE"):
        settings.set("GOVCRAWL_DEDUP_STATE", str(url), priority="cmdline")


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.profiles import read_profiles
    from crawler.report import format_table
    from crawler.runner import project_settings, run_spiders

    overrides = {"LOG_LEVEL": "INFO", **common_overrides(args)}
    if args.cassettes:
        if not Path(args.cassettes).is_dir():
            raise UsageError(f"cassette directory not found: {args.cassettes}")
        overrides["GOVCRAWL_CASSETTE_DIR"] = args.cassettes
        overrides.setdefault("AUTOTHROTTLE_ENABLED", False)  # replayed responses are instant
    if args.redis:
        overrides["GOVCRAWL_REDIS_URL"] = args.redis
    settings = project_settings(overrides)
    check_extract_workers(settings)
    check_cluster(settings)
    known = available_spiders(settings)
    broken = read_profiles().invalid
    if args.all:
        sites = known
        for error in broken.values():  # --all uses every profile: say which were left out
            print(f"govcrawl: skipped invalid profile {error}", file=sys.stderr)
    else:
        for site in args.sites:
            if site in broken:
                raise broken[site]
        unknown = [s for s in args.sites if s not in known]
        if unknown:
            raise UsageError(f"unknown site {unknown[0]!r} (known: {', '.join(known)})")
        sites = args.sites
    if not sites:
        raise UsageError("name at least one site, or --all (see: govcrawl sites)")
    if args.cassettes:
        check_cassettes([Path(args.cassettes) / f"{site}.yaml" for site in sites],
                        settings.get("GOVCRAWL_RECORD_MODE") or "none")
    check_archive(settings)
    log_path = log_to_file(args, settings, sites[0] if len(sites) == 1 else "crawl")
    live = log_path is not None and sys.stderr.isatty()
    if live:  # the live display replaces the per-crawler progress line
        settings.set("GOVCRAWL_PROGRESS_TTY", False, priority="cmdline")
    results = run_spiders([(site, {}) for site in sites], settings, live=live)
    reports = [crawl_report(r) for r in results]
    for result in results:
        if result.error:
            print(f"govcrawl: {result.spider}: {result.error}", file=sys.stderr)
    spooled = spooled_writes(settings)
    if spooled:
        print(f"govcrawl: the archive store failed: {spooled} writes kept in "
              f"{Path(settings.get('GOVCRAWL_STATE_DIR') or '.govcrawl') / 'spool'}; "
              f"`govcrawl archive flush` (or the next crawl) uploads them", file=sys.stderr)
    failed = [r for r in results if r.error or r.finish_reason not in ("finished", None)]
    with stdout_may_close():
        print(format_table(reports))
        if log_path is not None:
            print(f"log: {log_path}")
    return EXIT_FAILED if failed or spooled else EXIT_OK


# --- reextract --------------------------------------------------------------------------------


def cmd_reextract(args: argparse.Namespace) -> int:
    import re

    from crawler.archive import ArchiveWriter, open_archive
    from crawler.dedup import DedupConfig, Deduplicator, open_state
    from crawler.reextract import new_crawl_id, reextract
    from crawler.runner import project_settings

    if args.since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.since):
        raise UsageError(f"--since expects a date YYYY-MM-DD, got {args.since!r}")
    settings = project_settings(common_overrides(args))
    check_archive(settings)  # the state must belong to this archive
    archive = open_archive(settings=settings)
    state = open_state(settings)
    writer = ArchiveWriter(archive, settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl",
                           new_crawl_id())
    try:
        writer.open()
        try:
            counts = reextract(archive, writer, Deduplicator(state, DedupConfig.from_settings(
                settings)), site=args.site, since=args.since)
        finally:
            summary = writer.close()
        state.commit()  # after the archive has the new versions (or its spool does)
    finally:
        state.close()
        archive.close()
    docs, files = counts.documents, counts.attachments
    print(f"documents: {docs['changed']} changed (new version), {docs['unchanged']} unchanged"
          + (f", {docs['failed']} unreadable" if docs["failed"] else ""))
    print(f"attachments: {files['changed']} text changed, {files['unchanged']} unchanged"
          + (f", {files['missing']} missing" if files["missing"] else ""))
    if summary.get("spooled"):
        print(f"govcrawl: {summary['spooled']} writes spooled; run `govcrawl archive flush`",
              file=sys.stderr)
    return EXIT_FAILED if docs["failed"] or files["missing"] else EXIT_OK


# --- sites ------------------------------------------------------------------------------------


def cmd_sites(args: argparse.Namespace) -> int:
    from crawler.profiles import read_profiles

    profile_set = read_profiles()
    profiles, broken = profile_set.valid, profile_set.invalid
    if args.json:
        data: dict[str, Any] = {name: profile.to_dict() for name, profile in profiles.items()}
        data.update({name: {"invalid": str(error)} for name, error in broken.items()})
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    rows = [(name, f"{p.schedule or '-':<14} {p.title}  {p.start_urls[0] if p.start_urls else ''}")
            for name, p in profiles.items()]
    rows += [(name, f"{'INVALID':<14} {error}") for name, error in broken.items()]
    for name, line in sorted(rows):
        print(f"{name:<12} {line}")
    for error in broken.values():
        print(f"govcrawl: invalid profile {error}", file=sys.stderr)
    return EXIT_USAGE if broken else EXIT_OK


# --- schedule ---------------------------------------------------------------------------------


def cmd_schedule(args: argparse.Namespace) -> int:
    from crawler.profiles import read_profiles
    from crawler.runner import project_settings
    from crawler.schedule import Scheduler, setup_logging

    profile_set = read_profiles()
    schedules = {name: p.schedule for name, p in profile_set.valid.items() if p.schedule}
    broken = list(profile_set.invalid.values())
    if not schedules:
        if broken:
            raise broken[0]
        raise UsageError("no site profile has a schedule")
    for error in broken:
        print(f"govcrawl: not scheduled, invalid profile {error}", file=sys.stderr)
    state_dir = Path(args.state_dir or ".govcrawl")
    forwarded: list[str] = []
    if args.archive:
        forwarded += ["--archive", validate_archive_uri(args.archive)]
    if args.state_dir:
        forwarded += ["--state-dir", args.state_dir]
    if args.cassettes:
        forwarded += ["--cassettes", args.cassettes]
    for option in args.set or []:
        forwarded += ["-s", option]
    feed = None
    if args.redis:  # due sites go to the cluster's frontier, for `govcrawl worker`s
        import logging

        from crawler.cluster import OUTAGE_ERRORS
        from crawler.cluster_feed import check_url, seed

        if args.cassettes:
            raise UsageError("--cassettes with --redis: the workers crawl, give it to them")
        try:
            check_url(args.redis)
        except ValueError as exc:
            raise UsageError(f"--redis: {exc}") from None
        settings = project_settings({**common_overrides(args), "GOVCRAWL_REDIS_URL": args.redis})
        unreachable: list[str] = []

        def feed(site: str) -> int | None:
            try:
                return seed(settings, site)
            except OUTAGE_ERRORS as exc:  # not recorded as started: due again next time
                logging.getLogger("govcrawl.schedule").error(
                    "skip %s: Redis unreachable (%s)", site, exc)
                unreachable.append(site)
                return None

    scheduler = Scheduler(schedules, state_dir, forwarded, feed=feed)
    setup_logging(Path(args.log_file) if args.log_file else state_dir / "schedule.log")
    if not args.once:
        scheduler.serve()
        return EXIT_OK
    results = scheduler.run_due()
    for site in sorted(schedules):
        status = "not due" if site not in results else (
            "not queued (see the log)" if feed and results[site] is None else
            "already running" if results[site] is None else
            f"queued {results[site]} start request(s)" if feed else f"exit {results[site]}")
        print(f"{site:<12} {status}")
    if feed:  # a site Redis could not take is due again next time; the run failed
        return EXIT_FAILED if unreachable else EXIT_OK
    return EXIT_FAILED if any(code for code in results.values()) else EXIT_OK


# --- worker -----------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from crawler.cluster_feed import Worker
    from crawler.runner import project_settings
    from crawler.schedule import setup_logging

    overrides = {**common_overrides(args), "GOVCRAWL_REDIS_URL": args.redis}
    if args.crawls is not None:
        overrides["GOVCRAWL_REDIS_WORKER_CRAWLS"] = args.crawls
    settings = project_settings(overrides)
    check_cluster(settings)
    check_archive(settings)
    state_dir = Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
    forwarded = ["--archive", str(settings.get("GOVCRAWL_ARCHIVE"))]
    if args.cassettes:
        forwarded += ["--cassettes", args.cassettes]
    if args.state_dir:
        forwarded += ["--state-dir", args.state_dir]
    for option in args.set or []:
        forwarded += ["-s", option]
    worker = Worker(args.redis, forwarded, state_dir, available_spiders(settings),
                    max_crawls=settings.getint("GOVCRAWL_REDIS_WORKER_CRAWLS", 4),
                    poll=settings.getfloat("GOVCRAWL_REDIS_WORKER_POLL", 5.0),
                    retry_max=settings.getfloat("GOVCRAWL_REDIS_RETRY_MAX", 30.0),
                    once=args.once)
    setup_logging(Path(args.log_file) if args.log_file else state_dir / "worker.log")
    import signal

    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    codes = worker.run()
    for site, code in sorted(codes.items()):
        print(f"{site:<12} exit {code}")
    if worker.stopped:  # SIGTERM/Ctrl-C: its crawls were stopped, the cluster goes on
        return EXIT_OK
    return EXIT_FAILED if any(codes.values()) else EXIT_OK


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govcrawl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("extract", help="extract one saved page or attachment file (offline)")
    p.add_argument("file", help="saved page or file (raw bytes: HTML, PDF, DOC(X), XLS(X))")
    p.add_argument("--url", help="the page's URL (resolves links, dates in URLs)")
    p.add_argument("--content-type", help="the HTTP Content-Type header, if known")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.set_defaults(func=cmd_extract)

    def crawl_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--archive", metavar="URI", help="archive: a path, file:// or s3://bucket/prefix")
        p.add_argument("--state-dir", metavar="DIR", help="local state (dedup db, spool, job dirs)")
        p.add_argument("--record-mode", choices=["none", "once", "new_episodes", "all"],
                       help="cassette record mode (default: none = replay only)")
        p.add_argument("-s", "--set", action="append", metavar="NAME=VALUE",
                       help="override a Scrapy/govcrawl setting")

    p = sub.add_parser("fetch", help="fetch one URL now and print its clean text")
    p.add_argument("url")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.add_argument("--cassette", metavar="FILE", help="replay (or record) HTTP with a cassette")
    crawl_options(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("crawl", help="crawl sites by profile name")
    p.add_argument("sites", nargs="*", metavar="SITE")
    p.add_argument("--all", action="store_true", help="crawl every site profile")
    p.add_argument("--cassettes", metavar="DIR", help="replay from DIR/<site>.yaml (offline)")
    p.add_argument("--redis", metavar="URL",
                   help="join the cluster crawl on redis://HOST:PORT/DB (needs an s3:// archive)")
    crawl_options(p)
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("reextract", help="extract the archived pages and attachments again, "
                       "writing a new version where the text changed (no fetching)")
    p.add_argument("--site", metavar="S", help="only this site's documents and attachments")
    p.add_argument("--since", metavar="YYYY-MM-DD",
                   help="only documents published (else fetched) on or after this date")
    p.add_argument("--archive", metavar="URI", help="archive: a path, file:// or s3://bucket/prefix")
    p.add_argument("--state-dir", metavar="DIR", help="local state (dedup db, spool)")
    p.add_argument("-s", "--set", action="append", metavar="NAME=VALUE",
                   help="override a govcrawl setting")
    p.set_defaults(func=cmd_reextract)

    p = sub.add_parser("sites", help="list site profiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sites)

    from crawler.archive.cli import register as register_archive

    register_archive(sub)

    from crawler.index.cli import register as register_index
    from crawler.serve.cli import register as register_serve

    register_index(sub)
    register_serve(sub)

    p = sub.add_parser("schedule", help="re-crawl sites on their profiles' cron schedules")
    p.add_argument("--once", action="store_true", help="run what is due now, then exit (for cron)")
    p.add_argument("--log-file", metavar="FILE", help="default: <state dir>/schedule.log")
    p.add_argument("--cassettes", metavar="DIR", help="crawl offline from DIR/<site>.yaml")
    p.add_argument("--redis", metavar="URL", help="queue due sites on the cluster's Redis "
                   "(redis://HOST:PORT/DB) for `govcrawl worker`s instead of crawling them here")
    crawl_options(p)
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("worker", help="crawl the sites `govcrawl schedule --redis` queues, with "
                       "the other workers of the cluster")
    p.add_argument("--redis", metavar="URL", required=True, help="redis://HOST:PORT/DB")
    p.add_argument("--once", action="store_true",
                   help="crawl what is queued now, exit when no queued site has work left")
    p.add_argument("--crawls", type=int, metavar="N",
                   help="sites crawled at once (default GOVCRAWL_REDIS_WORKER_CRAWLS, 4)")
    p.add_argument("--cassettes", metavar="DIR", help="crawl offline from DIR/<site>.yaml")
    p.add_argument("--log-file", metavar="FILE", help="default: <state dir>/worker.log")
    crawl_options(p)
    p.set_defaults(func=cmd_worker)

    return parser


def _config_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean bad input or configuration (exit code 2)."""
    from crawler.cassette import CassetteError
    from crawler.dedup import DedupStateError
    from crawler.profiles import ProfileError
    from crawler.schedule import ScheduleError

    return (UsageError, ProfileError, ScheduleError, CassetteError, DedupStateError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FetchFailed as exc:
        print(f"govcrawl: fetch failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except WorkFailed as exc:
        print(f"govcrawl: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("govcrawl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our stdout stopped early: nothing of ours failed
        with stdout_may_close():
            raise
        return EXIT_OK
    except Exception as exc:  # one line, not a traceback
        if isinstance(exc, _config_errors()):
            print(f"govcrawl: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("GOVCRAWL_DEBUG"):
            raise
        print(f"govcrawl: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
