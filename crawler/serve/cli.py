"""``govcrawl serve``: the read-only web UI over the index built by ``govcrawl index``."""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from typing import Any

from crawler.index.cli import EXIT_OK, add_common, guard, open_existing_archive, settings_and_db


def cmd_serve(args: argparse.Namespace) -> int:
    from crawler.archive import ArchiveConfigError
    from crawler.index.build import IndexDbError, index_archive_uri
    from crawler.serve.app import serve

    if not 0 < args.port < 65536:
        raise ArchiveConfigError(f"--port must be 1-65535, got {args.port}")
    settings, db_path = settings_and_db(args)
    if not db_path.is_file():
        raise IndexDbError(f"no index at {db_path}: run `govcrawl index` first")
    archive = open_existing_archive(settings)
    import sqlite_utils

    try:
        indexed = index_archive_uri(sqlite_utils.Database(db_path))
    except sqlite3.DatabaseError as exc:
        raise IndexDbError(f"{db_path} is not a govcrawl index ({exc})") from None
    if indexed is None:
        raise IndexDbError(f"{db_path} is not a govcrawl index: run `govcrawl index` first")
    if indexed != archive.uri:
        raise IndexDbError(f"{db_path} indexes {indexed}, not {archive.uri} "
                           "(give the --archive it was built from, or another --db)")
    if "sha256" not in sqlite_utils.Database(db_path)["doc_attachments"].columns_dict:
        raise IndexDbError(f"{db_path} was built by an older govcrawl: run `govcrawl index` "
                           "to update it")
    with contextlib.suppress(KeyboardInterrupt):
        serve(db_path, archive, host=args.host, port=args.port)
    return EXIT_OK


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("serve", help="read-only web UI over the index (search, documents)")
    add_common(p)
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.set_defaults(func=guard(cmd_serve, "serve"))
    return p
