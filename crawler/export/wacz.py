"""``govcrawl archive export-wacz``: a crawl's WARC records packaged as WACZ (the ``wacz`` package).

The WACZ holds the crawl's WARC segments unchanged, a CDXJ index, and ``pages/pages.jsonl`` listing
the documents the crawl fetched (URL, fetch time, title), so ReplayWeb.page and pywb open them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.archive import Archive
from crawler.archive.stores import ArchiveConfigError, ArchiveError

#: outcomes whose page has a full response record in the crawl's WARC (``unchanged`` is a revisit)
PAGE_OUTCOMES = ("new", "changed", "near_duplicate", "duplicate")


def select_crawls(archive: Archive, crawl: str | None, site: str | None) -> list[str]:
    """The crawl ids to export: one crawl, every crawl of a site, or every crawl."""
    crawls = archive.crawls()
    if crawl:
        if layout.safe_part(crawl) != crawl or crawl not in crawls:
            raise ArchiveConfigError(f"no crawl {crawl!r} in {archive.uri}")
        return [crawl]
    if site:
        chosen = [c for c in crawls
                  if any(e.get("site") in (site,) or layout.site_part(e.get("site") or "") == site
                         for e in archive.manifest(c) if e.get("kind") != "warc")]
        if not chosen:
            raise ArchiveConfigError(f"no crawl of site {site!r} in {archive.uri}")
        return chosen
    if not crawls:
        raise ArchiveConfigError(f"no crawls in {archive.uri}")
    return crawls


def pages_and_warcs(archive: Archive, crawl_ids: list[str]) -> tuple[list[dict], list[str]]:
    """``pages.jsonl`` entries (documents with a response record) and the WARC keys to pack."""
    pages: list[dict[str, Any]] = []
    warcs: list[str] = []
    seen: set[tuple[str, str]] = set()
    for crawl_id in crawl_ids:
        for entry in archive.manifest(crawl_id):
            if entry.get("kind") == "warc":
                warcs += [o["key"] for o in entry.get("objects") or [] if o.get("key")]
                continue
            if entry.get("kind") != "article" or entry.get("outcome") not in PAGE_OUTCOMES:
                continue
            url = entry.get("final_url") or entry.get("url")
            ts = entry.get("fetched_at") or ""
            if not url or (url, ts) in seen:
                continue
            seen.add((url, ts))
            page = {"id": f"{entry.get('doc_id')}-v{entry.get('version') or 0}", "url": url,
                    "ts": ts, "title": entry.get("title") or url}
            pages.append(page)
    return pages, list(dict.fromkeys(warcs))


def export_wacz(archive: Archive, out: Path, crawl_ids: list[str]) -> dict[str, Any]:
    """Write ``out`` (a .wacz) from the crawls' WARC segments; return counts. Runs ``wacz``'s own
    validation on the result (raises :class:`ArchiveError` if it fails)."""
    from wacz.main import main as wacz_main

    pages, warc_keys = pages_and_warcs(archive, crawl_ids)
    if not warc_keys:
        raise ArchiveError(f"no WARC records for {', '.join(crawl_ids)} in {archive.uri}")
    with tempfile.TemporaryDirectory(prefix="govcrawl-wacz-") as tmp:
        work = Path(tmp)
        files = []
        for i, key in enumerate(warc_keys):
            path = work / f"{i:05d}-{key.rsplit('/', 1)[-1]}"
            path.write_bytes(archive.get(layout.check_key(key)))
            files.append(str(path))
        pages_path = work / "pages.jsonl"
        header = {"format": "json-pages-1.0", "id": "pages", "title": "govcrawl documents"}
        pages_path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n"
                                      for p in [header, *pages]), encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        log = io.StringIO()
        title = f"govcrawl {', '.join(crawl_ids)}" if len(crawl_ids) <= 3 else \
            f"govcrawl {len(crawl_ids)} crawls"
        with contextlib.redirect_stdout(log):
            code = wacz_main(["create", "-o", str(out), "-p", str(pages_path), "--title", title,
                              *files])
            if code == 0:
                code = wacz_main(["validate", "-f", str(out)])
        if code != 0:
            last = [line for line in log.getvalue().splitlines() if line.strip()][-1:]
            raise ArchiveError(f"wacz failed: {last[0] if last else 'exit ' + str(code)}")
    return {"pages": len(pages), "warcs": len(warc_keys), "bytes": out.stat().st_size}


def cmd_export_wacz(args: argparse.Namespace) -> int:
    from crawler.archive.cli import _archive

    out = Path(args.out)
    if out.suffix.lower() != ".wacz":
        raise ArchiveConfigError(f"the output must be a .wacz file, got {args.out!r}")
    archive = _archive(args)
    crawl_ids = select_crawls(archive, args.crawl, args.site)
    counts = export_wacz(archive, out, crawl_ids)
    print(f"wrote {out}: {counts['pages']} pages, {counts['warcs']} WARC files, "
          f"{counts['bytes']} bytes (wacz validate: OK)")
    return 0


def register(actions: Any, common: argparse.ArgumentParser, guard: Any) -> None:
    """Add ``export-wacz`` to the ``archive`` actions."""
    p = actions.add_parser("export-wacz", parents=[common],
                           help="package a crawl's WARC records as a WACZ (pywb, ReplayWeb.page)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--crawl", metavar="CRAWL_ID", help="one crawl")
    which.add_argument("--site", help="every crawl of this site")
    p.add_argument("out", metavar="OUT.wacz")
    p.set_defaults(func=guard(cmd_export_wacz))


if __name__ == "__main__":
    sys.exit("use: govcrawl archive export-wacz")
