"""``govcrawl index``: build or update the SQLite index of an archive (crawler/index/build.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DB = "index.db"


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archive", metavar="URI",
                   help="archive: a path, file:// or s3://bucket/prefix (default: GOVCRAWL_ARCHIVE "
                        "or ./archive)")
    p.add_argument("--state-dir", metavar="DIR", help="local state; default .govcrawl")
    p.add_argument("--db", metavar="PATH",
                   help=f"the index database (default: <state dir>/{DEFAULT_DB})")


def settings_and_db(args: argparse.Namespace) -> tuple[Any, Path]:
    from crawler.archive.cli import _settings

    settings = _settings(args)
    state = Path(settings.get("GOVCRAWL_STATE_DIR") or ".govcrawl")
    return settings, Path(args.db) if args.db else state / DEFAULT_DB


def open_existing_archive(settings: Any) -> Any:
    """The archive of the settings; a local path that is not an archive directory is refused."""
    from crawler.archive import ArchiveConfigError, StoreError, open_archive

    archive = open_archive(settings=settings)
    try:
        archive.ping()
    except StoreError as exc:
        raise ArchiveConfigError(str(exc)) from None
    if archive.store.scheme == "file" and not (Path(archive.store.root) / "crawls").is_dir():
        raise ArchiveConfigError(f"no archive at {archive.store.root} (no crawls/ directory)")
    return archive


def cmd_index(args: argparse.Namespace) -> int:
    from crawler.index import build_index

    settings, db_path = settings_and_db(args)
    archive = open_existing_archive(settings)
    stats = build_index(archive, db_path)
    print(f"indexed {archive.uri} into {db_path}: {stats.summary()}")
    return EXIT_OK


def guard(fn: Any, prog: str) -> Any:
    """One line on stderr: exit 2 for bad input/configuration, 1 when the work failed."""

    def run(args: argparse.Namespace) -> int:
        import sqlite3

        from crawler.archive import ArchiveConfigError, ArchiveError
        from crawler.archive.layout import UnsafeKeyError
        from crawler.index.build import IndexDbError

        try:
            return fn(args)
        except (ArchiveConfigError, IndexDbError, UnsafeKeyError) as exc:
            print(f"govcrawl {prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except sqlite3.DatabaseError as exc:
            print(f"govcrawl {prog}: error: index database: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (ArchiveError, OSError, ValueError, KeyError) as exc:
            print(f"govcrawl {prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED

    run.__name__ = fn.__name__
    return run


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("index", help="build/update the searchable index of the archive")
    add_common(p)
    p.set_defaults(func=guard(cmd_index, "index"))
    return p
