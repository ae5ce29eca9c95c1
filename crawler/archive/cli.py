"""``govcrawl archive ls|show|verify|flush``: look into the archive, check it, upload the spool.

The lead's CLI calls :func:`register` with its sub-parsers; each action sets ``func(args) -> int``.
``python -m crawler.archive.cli ...`` runs the same commands on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.archive import Archive, open_archive
from crawler.archive.stores import ArchiveConfigError, ArchiveError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DOC_OUTCOMES = ("new", "changed", "near_duplicate")


def _settings(args: argparse.Namespace) -> Any:
    """Project settings (:func:`crawler.runner.project_settings`: defaults, environment), then
    the command line."""
    from crawler.runner import project_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "archive", None):
        overrides["GOVCRAWL_ARCHIVE"] = args.archive
    if getattr(args, "state_dir", None):
        overrides["GOVCRAWL_STATE_DIR"] = args.state_dir
    return project_settings(overrides)


def _archive(args: argparse.Namespace) -> Archive:
    return open_archive(settings=_settings(args))


def _doc_entries(archive: Archive) -> list[dict[str, Any]]:
    """One manifest line per stored document version (latest crawl wins)."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in archive.entries():
        if entry.get("kind") == "warc" or entry.get("outcome") not in DOC_OUTCOMES:
            continue
        if entry.get("doc_id") is None or entry.get("version") is None:
            continue
        seen[(entry["doc_id"], int(entry["version"]))] = entry
    return sorted(seen.values(), key=lambda e: (e.get("site") or "", e["doc_id"], e["version"]))


def cmd_ls(args: argparse.Namespace) -> int:
    if args.since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.since):
        raise ArchiveConfigError(f"--since expects a date YYYY-MM-DD, got {args.since!r}")
    archive = _archive(args)
    shown = 0
    for entry in _doc_entries(archive):
        site = entry.get("site") or ""
        if args.site and args.site not in (site, layout.site_part(site)):
            continue
        date = entry.get("published") or (entry.get("fetched_at") or "")[:10]
        if args.since and date < args.since:
            continue
        shown += 1
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
        else:
            # published and fetched in their own columns: a missing published date shows as "-"
            title = (entry.get("title") or "").replace("\t", " ")
            published = entry.get("published") or "-"
            fetched = (entry.get("fetched_at") or "")[:10] or "-"
            print(f"{entry['doc_id']}\tv{entry['version']}\t{published}\t{fetched}\t{site}\t"
                  f"{title}\t{entry.get('final_url') or entry.get('url')}")
    if not shown:
        print("no documents", file=sys.stderr)
    return EXIT_OK


def _resolve(archive: Archive, target: str) -> str:
    """A document id from an id or a URL (duplicates resolve to their canonical document)."""
    if "://" not in target:
        return target
    best = None
    for entry in archive.entries():
        if target not in (entry.get("url"), entry.get("final_url")) or not entry.get("doc_id"):
            continue
        if best is None or (entry.get("fetched_at") or "") >= (best.get("fetched_at") or ""):
            best = entry
    if best is None:
        raise ArchiveError(f"no document archived for URL {target}")
    if best.get("outcome") == "duplicate" and best.get("canonical_id"):
        return best["canonical_id"]
    return best["doc_id"]


def cmd_show(args: argparse.Namespace) -> int:
    archive = _archive(args)
    doc_id = _resolve(archive, args.target)
    found = archive.find_doc(doc_id)
    if found is None:
        raise ArchiveError(f"no document {doc_id!r} in {archive.uri}")
    site, versions = found
    version = args.version or versions[-1]
    if version not in versions:
        raise ArchiveError(f"document {doc_id!r} has versions {versions}, not {version}")
    base = f"{layout.DOCS}/{site}/{layout.safe_part(doc_id)}/{layout.version_part(version)}"
    meta = archive.get_json(f"{base}/meta.json")
    text = archive.get(f"{base}/text").decode("utf-8")
    print(json.dumps(meta, ensure_ascii=False, indent=1))
    print()
    print(text)
    extra_key = (meta.get("keys") or {}).get("attachment_text")
    if extra_key:
        print()
        print("[attachment text]")
        print(archive.get(extra_key).decode("utf-8"))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    settings = _settings(args)
    archive = open_archive(settings=settings)
    report = archive.verify(args.crawl)
    for line in report.bad:
        print(f"BAD {line}")
    missing = [] if args.crawl else missing_documents(archive, settings)
    for line in missing:
        print(f"BAD {line}")
    bad = len(report.bad) + len(missing)
    status = "OK" if not bad else f"{bad} BAD"
    print(f"verified {report.checked} objects in {archive.uri}: {status}")
    return EXIT_OK if not bad else EXIT_FAILED


def missing_documents(archive: Archive, settings: Any) -> list[str]:
    """Completeness: what the dedup state of ``--state-dir`` knows (every document version,
    duplicate alias and attachment) that the archive lacks; a write still in the spool says so.
    Nothing to compare without a state, or with one that belongs to another archive."""
    from crawler.archive.spool import Spool
    from crawler.dedup.state import ARCHIVE_KEY, open_state, state_uri

    uri = state_uri(settings)
    if uri.startswith("sqlite:///") and not os.path.isfile(uri.removeprefix("sqlite:///")):
        return []
    state = open_state(settings)
    try:
        if state.get_meta(ARCHIVE_KEY) not in (None, archive.store.uri):
            print(f"govcrawl archive: the state in {settings.get('GOVCRAWL_STATE_DIR')} belongs "
                  f"to archive {state.get_meta(ARCHIVE_KEY)}: not compared", file=sys.stderr)
            return []
        versions = list(state.iter_versions())
        attachments = {(u.url, u.text_hash) for u in state.iter_urls() if not u.doc_id}
    finally:
        state.close()
    stored: set[tuple[str, int]] = set()
    for key in archive.store.list(f"{layout.DOCS}/"):
        parts = key.split("/")
        if len(parts) == 5 and parts[4] == "meta.json":
            version = layout.parse_version(parts[3])
            if version is not None:
                stored.add((parts[2], version))
    aliased = {archive.get_json(key).get("doc_id") for key in
               archive.store.list(f"{layout.ALIASES}/") if key.endswith(".json")}
    bodies = {key.split("/")[2] for key in archive.store.list(f"{layout.ATTACHMENTS}/")
              if key.endswith("/body")}
    spool = Spool(Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl") / "spool")
    spooled: set[Any] = set()
    for entry in spool.ids(archive.uri):
        try:
            plan = spool.load(entry)
        except (OSError, ValueError, ArchiveError):
            continue
        if plan.dedup:
            spooled.add((plan.dedup.get("doc_id"), plan.dedup.get("version")))
        if (plan.entry or {}).get("kind") == "attachment":
            spooled.add(plan.entry.get("sha256"))
    where = " (still in the spool: govcrawl archive flush)"
    missing = []
    for v in sorted(versions, key=lambda v: (v.doc_id, v.version)):
        if v.outcome == "duplicate":
            if v.doc_id not in aliased:
                missing.append(f"alias of {v.url} (doc {v.doc_id}): known to the dedup state, "
                               f"not in the archive" + (where if (v.doc_id, v.version) in spooled
                                                        else ""))
        elif (layout.safe_part(v.doc_id), v.version) not in stored:
            missing.append(f"{layout.DOCS}/*/{layout.safe_part(v.doc_id)}/v{v.version} ({v.url}): "
                           f"known to the dedup state, not in the archive"
                           + (where if (v.doc_id, v.version) in spooled else ""))
    for url, sha in sorted(attachments):
        if sha not in bodies:
            missing.append(f"{layout.attachment_body_key(sha)} ({url}): known to the dedup "
                           f"state, not in the archive" + (where if sha in spooled else ""))
    return missing


def cmd_flush(args: argparse.Namespace) -> int:
    from crawler.archive.writer import ArchiveWriter
    from crawler.items import utc_now

    settings = _settings(args)
    archive = open_archive(settings=settings)
    state = Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
    writer = ArchiveWriter(archive, state, "flush-" + re.sub(r"\D", "", utc_now()),
                           probe_interval=0)
    writer.open()
    summary = writer.close()
    forget_in_state(settings, writer.take_forgotten())
    left = summary["spool_entries"]
    print(f"flushed {summary.get('flushed', 0)} spool entries to {archive.uri}; {left} left")
    if summary.get("quarantined"):
        print(f"{summary['quarantined']} damaged entries moved to {writer.spool.dir}/quarantine; "
              f"the archive lacks their documents, the next crawl fetches them again",
              file=sys.stderr)
    return EXIT_OK if not left and not summary.get("quarantined") else EXIT_FAILED


def forget_in_state(settings: Any, verdicts: list[dict[str, Any]]) -> None:
    """Undo the dedup verdicts of quarantined spool entries in the state of ``--state-dir``."""
    if not verdicts:
        return
    from crawler.dedup import DedupConfig, Deduplicator, open_state
    from crawler.dedup.service import forget

    state = open_state(settings)
    try:
        forget(Deduplicator(state, DedupConfig.from_settings(settings)), verdicts)
        state.commit()
    finally:
        state.close()


def archived_attachments(archive: Archive) -> Any:
    """``(url, sha256, first fetched)`` of every attachment sighting the archive records."""
    for key in archive.store.list(f"{layout.ATTACHMENTS}/"):
        if "/refs/" in key and key.endswith(".json"):
            ref = archive.get_json(key)
            sha, seen = ref.get("sha256") or key.split("/")[2], ref.get("first_fetched_at") or ""
            for url in {ref.get("url"), ref.get("final_url")} - {None}:
                yield str(url), sha, seen


def archived_records(archive: Archive) -> Any:
    """The dedup records of an archive, from its documents' ``meta.json`` + text and its aliases.

    What :func:`crawler.dedup.rebuild_state` takes; yields documents first, then aliases.
    """
    texts: dict[str, str] = {}  # doc_id -> text of its highest version, for aliases
    best: dict[str, int] = {}
    for key in archive.store.list("docs/"):
        if not key.endswith("/meta.json"):
            continue
        meta = archive.get_json(key)
        text_key = (meta.get("keys") or {}).get("text") or key[: -len("meta.json")] + "text"
        text = archive.get(text_key).decode("utf-8")
        doc_id, version = meta["doc_id"], int(meta["version"])
        if version >= best.get(doc_id, 0):
            best[doc_id], texts[doc_id] = version, text
        dedup = meta.get("dedup") or {}
        http = meta.get("http") or {}
        headers = http.get("headers") or {}
        yield {"doc_id": doc_id, "version": version, "url": meta["url"], "site": meta.get("site"),
               "index_no": meta.get("index_no"), "text": text, "title": meta.get("title"),
               "attachments": meta.get("attachments") or [], "seen_at": meta.get("fetched_at"),
               "etag": headers.get("etag"), "last_modified": headers.get("last-modified"),
               "canonical_id": meta.get("canonical_id"), "similarity": dedup.get("similarity")}
    for key in archive.store.list("aliases/"):
        if not key.endswith(".json"):
            continue
        alias = archive.get_json(key)
        canonical = alias.get("canonical_id")
        if canonical in texts:
            yield {"doc_id": alias.get("doc_id") or canonical, "version": 1, "url": alias["url"],
                   "site": alias.get("site"), "outcome": "duplicate", "canonical_id": canonical,
                   "text": texts[canonical], "index_no": alias.get("index_no")}


def cmd_rebuild_state(args: argparse.Namespace) -> int:
    """Refill the dedup state of ``--state-dir`` from the archive (after a loss or corruption)."""
    from crawler.dedup import DedupConfig, open_state, rebuild_state
    from crawler.dedup.state import ARCHIVE_ID_KEY, ARCHIVE_KEY, attachment_record, state_uri

    settings = _settings(args)
    archive = open_archive(settings=settings)
    path = state_uri(settings).removeprefix("sqlite:///")
    if state_uri(settings).startswith("sqlite:///") and os.path.exists(path):
        aside = f"{path}.broken-{os.getpid()}"
        try:
            from crawler.dedup.sqlite import SQLiteDedupState

            SQLiteDedupState(path).close()  # readable: rebuilt in place
        except ValueError:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.replace(path + suffix, aside + suffix)
            print(f"moved the unreadable state aside to {aside}", file=sys.stderr)
    state = open_state(settings)
    try:
        config = DedupConfig.from_settings(settings)
        counts = rebuild_state(state, archived_records(archive), config)
        for url, sha, seen in archived_attachments(archive):
            state.put_url(attachment_record(url, sha, seen=seen))
        state.set_meta(ARCHIVE_KEY, archive.store.uri)
        state.set_meta(ARCHIVE_ID_KEY, archive.archive_id() or archive.claim_id(uuid.uuid4().hex))
        state.commit()
    finally:
        state.close()
    print(f"rebuilt the dedup state from {archive.uri}: {counts['docs']} documents, "
          f"{counts['records']} records ({counts['skipped']} skipped)")
    return EXIT_OK


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``archive`` and its actions to ``subparsers`` (an argparse sub-parsers object)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--archive", metavar="URI",
                        help="archive: a path, file:// or s3://bucket/prefix "
                             "(default: GOVCRAWL_ARCHIVE)")
    common.add_argument("--state-dir", metavar="DIR", help="local state (spool); default .govcrawl")

    parser = subparsers.add_parser("archive", help="list/show/verify the archive, flush the spool")
    actions = parser.add_subparsers(dest="archive_command", required=True, metavar="ACTION")

    p = actions.add_parser("ls", parents=[common], help="documents by site/date")
    p.add_argument("--site", help="only this site")
    p.add_argument("--since", metavar="DATE",
                   help="only documents published (else fetched) on or after YYYY-MM-DD")
    p.add_argument("--json", action="store_true", help="one JSON manifest line per document")
    p.set_defaults(func=_guard(cmd_ls))

    p = actions.add_parser("show", parents=[common], help="print a document's meta and text")
    p.add_argument("target", metavar="DOC_ID|URL")
    p.add_argument("--version", type=int, help="default: the latest")
    p.set_defaults(func=_guard(cmd_show))

    p = actions.add_parser("verify", parents=[common],
                           help="recompute checksums of stored objects, and check that the "
                                "archive holds every document the dedup state of --state-dir "
                                "knows (exit 1 otherwise)")
    p.add_argument("--crawl", metavar="CRAWL_ID", help="only this crawl's objects")
    p.set_defaults(func=_guard(cmd_verify))

    p = actions.add_parser("flush", parents=[common], help="upload the local spool")
    p.set_defaults(func=_guard(cmd_flush))

    p = actions.add_parser("rebuild-state", parents=[common],
                           help="rebuild the dedup state of --state-dir from the archive")
    p.set_defaults(func=_guard(cmd_rebuild_state))

    from crawler.export.wacz import register as register_wacz

    register_wacz(actions, common, _guard)
    return parser


def _guard(fn: Any) -> Any:
    """One clear line on stderr and a non-zero exit instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except BrokenPipeError:
            # The reader stopped early (``archive ls | head``): not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        except ArchiveConfigError as exc:
            print(f"govcrawl archive: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ArchiveError as exc:
            print(f"govcrawl archive: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except (KeyError, ValueError, OSError) as exc:
            print(f"govcrawl archive: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED

    run.__name__ = fn.__name__
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="govcrawl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
