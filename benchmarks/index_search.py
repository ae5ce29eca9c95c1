"""Index build rate and search latency of ``govcrawl index`` / the web UI's search at scale.

    python benchmarks/index_search.py [--docs 50000] [--archive DIR] [--queries 200]

Documents are written through the archive writer (text, meta.json, WARC, manifests:
what a crawl writes) in crawls of 5,000, their text made of real sentences from the
seed reports (tests/seeds), with the 信息公开 fields a portal gives (publisher, topic,
索引号, dates) varied across ten sites. Then, with the product's defaults: a full
``build_index`` (documents/s), an update after one more crawl of 1,000 documents
(reads only that manifest), and search latency through ``crawler.index.search`` (the
query the web UI runs, with its six facet counts) for phrases of 4-8 characters taken
from random documents (FTS5 trigram) and for two-character words (the bigram
index), median and p95 in ms.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SITES = ["liuzhi", "ningbo", "wanzai", "yichun", "zjfgw", "shanxi", "gulou", "tzw", "qlyn",
         "whgsj"]
PUBLISHERS = ["办公室", "发展和改革委员会", "统计局", "司法局", "财政局", "自然资源局",
              "人力资源和社会保障局", "生态环境局", None]
TOPICS = ["综合政务", "国民经济管理", "财政、金融、审计", "国土资源、能源", "劳动、人事、监察",
          None]
PER_CRAWL = 5000


def sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "tests" / "seeds")
                                                                   .glob("*.txt")))
    return [s.strip() + "。" for s in re.split(r"[。\n]", text) if len(s.strip()) > 12]


def make_item(n: int, crawl_id: str, pool: list[str], rng: random.Random):
    from crawler.items import ARTICLE, NEW, DedupResult, Document, PageItem, ResponseRecord

    site = SITES[n % len(SITES)]
    body = "\n".join(rng.choice(pool) for _ in range(rng.randint(8, 40)))
    title = rng.choice(pool)[:30].rstrip("。，,")
    year = rng.randint(2015, 2025)
    published = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    stamp = published.replace("-", "")
    url = f"http://www.{site}.gov.cn/zwgk/{stamp[:6]}/t{stamp}_{n}.html"
    org = rng.choice(PUBLISHERS)
    doc = Document(url=url, text=body, title=title, published=published,
                   publisher=f"{site}{org}" if org else None, topic=rng.choice(TOPICS),
                   index_no=f"11{n:09d}/{year}-{n % 997:05d}", source=f"{site}人民政府")
    html = f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>"
    rec = ResponseRecord(url=url, status=200, body=html.encode("utf-8"),
                         fetched_at=f"2026-01-{1 + (n // PER_CRAWL) % 28:02d}T08:00:00Z",
                         headers=[("Content-Type", "text/html; charset=utf-8")])
    text_hash = hashlib.sha256(body.encode("utf-8")).hexdigest()
    dedup = DedupResult(outcome=NEW, doc_id=hashlib.sha1(url.encode()).hexdigest(), version=1,
                        text_hash=text_hash, urls=[url])
    return PageItem(site=site, kind=ARTICLE, response=rec, crawl_id=crawl_id, document=doc,
                    dedup=dedup)


def write_archive(root: Path, docs: int, start: int = 0) -> float:
    from crawler.archive import ArchiveWriter, open_archive

    pool, rng = sentences(), random.Random(start + 16)
    archive = open_archive(str(root))
    began = time.monotonic()
    for first in range(start, start + docs, PER_CRAWL):
        crawl_id = f"20260101T{first // PER_CRAWL:06d}Z-bench"
        with tempfile.TemporaryDirectory() as state:
            writer = ArchiveWriter(archive, Path(state), crawl_id, probe_interval=0)
            writer.open()
            for n in range(first, min(first + PER_CRAWL, start + docs)):
                writer.write(make_item(n, crawl_id, pool, rng))
            writer.close()
        print(f"  wrote {min(first + PER_CRAWL, start + docs) - start} documents", flush=True)
    return time.monotonic() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--archive", help="reuse/keep the generated archive here")
    parser.add_argument("--db", help="keep the index here (rebuilt from scratch)")
    parser.add_argument("--search-only", action="store_true",
                        help="measure search on the index already at --db (no build)")
    args = parser.parse_args()

    from crawler.archive import open_archive

    with tempfile.TemporaryDirectory(prefix="govcrawl-index-bench-") as tmp:
        root = Path(args.archive) if args.archive else Path(tmp) / "archive"
        if not (root / "crawls").is_dir():
            print(f"writing {args.docs} documents to {root}", flush=True)
            secs = write_archive(root, args.docs)
            print(f"archive written in {secs:.0f}s", flush=True)
        archive = open_archive(str(root))
        db = Path(args.db) if args.db else Path(tmp) / "index.db"
        if args.search_only:
            if not db.is_file():
                parser.error(f"--search-only: no index at {db}")
        else:
            build_and_update(root, archive, db)
        search_latency(db, args.queries)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (the wall times "
          f"include waiting for a CPU; the CPU times do not)")


def build_and_update(root: Path, archive: Any, db: Path) -> None:
    """A full build from scratch, then an update after one more crawl; prints both."""
    from crawler.index import build_index

    for old in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        old.unlink(missing_ok=True)
    stats = build_index(archive, db)
    print(f"full build: {stats.versions} documents in {stats.seconds:.1f}s = "
          f"{stats.versions / stats.seconds:.0f} docs/s; index {db.stat().st_size >> 20} MiB",
          flush=True)
    # one more crawl, new each run (a reused archive keeps the earlier runs' crawls)
    write_archive(root, 1000, start=(len(archive.crawls()) + 1) * PER_CRAWL)
    update = build_index(archive, db)
    print(f"update: {update.crawls_read} new manifest read, {update.versions} documents in "
          f"{update.seconds:.1f}s ({update.crawls_skipped} manifests unchanged, not read)")


def search_latency(db: Path, queries: int) -> None:
    """Median and p95 of the web UI's search for phrases and for two-character words."""
    from crawler.index import search

    conn = sqlite3.connect(db)
    rng = random.Random(7)
    texts = [r[0] for r in conn.execute(
        "SELECT text FROM documents ORDER BY random() LIMIT ?", [queries])]
    phrases = []
    for text in texts:
        line = rng.choice([x for x in text.splitlines() if len(x) > 12])
        at = rng.randrange(0, len(line) - 8)
        phrases.append(line[at:at + rng.randint(4, 8)])
    words = ["征地", "公开", "财政", "审计", "环境", "养老", "监督", "教育"]
    for label, batch in [("phrase (trigram FTS)", phrases),
                         ("two-character word (bigram index)", words * 3)]:
        times, cpu, found = [], [], 0
        for query in batch:
            began, began_cpu = time.perf_counter(), time.process_time()
            result = search(conn, query)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            found += result.total > 0
        print(f"search, {label}: median {statistics.median(times):.1f} ms, "
              f"p95 {percentile(times, 0.95):.1f} ms (CPU median {statistics.median(cpu):.1f} ms, "
              f"p95 {percentile(cpu, 0.95):.1f} ms) over {len(batch)} queries "
              f"({found} with hits), 20 rows + 6 facets each")


if __name__ == "__main__":
    main()
