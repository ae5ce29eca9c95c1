"""The crawl report: what one crawl did, built from the crawler's stats."""

from __future__ import annotations

from typing import Any

from crawler.items import OUTCOMES

#: Exceptions that are not errors here: counted under ``govcrawl/errors/<kind>`` already
#: (CassetteMiss), or requests a stopped crawl did not send (``not_sent``).
COUNTED_AS_GOVCRAWL_ERRORS = {"CassetteMiss", "CrawlStopped"}
ERROR_PREFIXES = (
    "downloader/exception_type_count/",
    "govcrawl/errors/",
    "spider_exceptions/",
)


def build_report(spider: str, stats: dict[str, Any], crawl_id: str | None = None) -> dict[str, Any]:
    """Summarise a crawl's stats into the report's fields (JSON-serialisable)."""
    errors: dict[str, int] = {}
    for key, value in stats.items():
        for prefix in ERROR_PREFIXES:
            if key.startswith(prefix):
                kind = key[len(prefix) :].rsplit(".", 1)[-1]
                if kind in COUNTED_AS_GOVCRAWL_ERRORS:
                    continue
                errors[kind] = errors.get(kind, 0) + int(value)
    http_errors = {
        key.rsplit("/", 1)[-1]: int(value)
        for key, value in stats.items()
        if key.startswith("downloader/response_status_count/")
    }
    not_found = http_errors.pop("404", 0) + http_errors.pop("410", 0)  # gone pages, not failures
    for status, count in http_errors.items():
        if status.startswith(("4", "5")):
            errors[f"http_{status}"] = errors.get(f"http_{status}", 0) + count
    start, finish = stats.get("start_time"), stats.get("finish_time")
    return {
        "crawl_id": crawl_id,
        "site": spider,
        "started": start.isoformat() if hasattr(start, "isoformat") else start,
        "finished": finish.isoformat() if hasattr(finish, "isoformat") else finish,
        "finish_reason": stats.get("finish_reason"),
        "duration_s": round(float(stats.get("elapsed_time_seconds") or 0.0), 2),
        "pages_fetched": int(stats.get("downloader/response_count", 0)),
        "documents": {o: int(stats.get(f"govcrawl/dedup/{o}", 0)) for o in OUTCOMES},
        "attachments": int(stats.get("govcrawl/archive/attachments", 0)),
        # known articles not fetched again, and those the server said were not modified (304)
        "known_skipped": int(stats.get("govcrawl/incremental/skipped", 0)),
        "not_modified": int(stats.get("govcrawl/incremental/not_modified", 0)),
        "not_documents": int(
            sum(v for k, v in stats.items() if k.startswith("govcrawl/not_document/"))
        ),
        "spam_removed": int(stats.get("govcrawl/spam_removed", 0)),
        "bytes_stored": int(stats.get("govcrawl/archive/bytes", 0)),
        "not_found": not_found,
        # requests queued when the crawl was stopped (SIGTERM, Ctrl-C): the next run fetches them
        "not_sent": int(stats.get("govcrawl/stopped/not_sent", 0)),
        "errors": dict(sorted(errors.items())),
    }


def format_table(reports: list[dict[str, Any]]) -> str:
    """A plain-text table of reports, one row per site, for the end of ``govcrawl crawl``."""
    columns = [
        ("site", lambda r: r["site"]),
        ("pages", lambda r: r["pages_fetched"]),
        *[(o.replace("_", "-"), lambda r, o=o: r["documents"][o]) for o in OUTCOMES],
        ("attach", lambda r: r["attachments"]),
        # documents and attachments the state knows, not fetched again (incremental crawling)
        ("known", lambda r: r.get("known_skipped", 0)),
        ("spam", lambda r: r["spam_removed"]),
        ("404", lambda r: r.get("not_found", 0)),
        ("errors", lambda r: sum(r["errors"].values())),
        ("bytes", lambda r: r["bytes_stored"]),
        ("secs", lambda r: r["duration_s"]),
    ]
    rows = [[str(get(r)) for _name, get in columns] for r in reports]
    header = [name for name, _get in columns]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for report in reports:
        if report["errors"]:
            kinds = ", ".join(f"{k}={v}" for k, v in report["errors"].items())
            lines.append(f"{report['site']}: errors: {kinds}")
        if report.get("not_sent"):
            lines.append(f"{report['site']}: stopped with {report['not_sent']} requests not sent "
                         f"(the next run fetches them)")
    return "\n".join(lines)
