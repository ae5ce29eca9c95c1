"""Dedup throughput and memory: check (insert + query) N documents built from the real corpus.

Documents are made from sentences of the bundled corpus pages (plain lxml text) and seed texts:
mostly new texts (random runs of sentences, ~1,500 characters), plus exact copies of earlier
documents under other URLs (with full-width/half-width and whitespace variants), ~2% edits of
earlier documents, and re-crawls of earlier URLs. Prints progress lines with documents/s and RSS,
then one JSON summary (outcome counts, docs/s of dedup time, docs per CPU second of dedup -- what
counts on a busy machine --, peak RSS via resource.getrusage, and the near-duplicate catch rate:
the share of the ~2% edits found as ``near_duplicate``).

    python benchmarks/dedup_throughput.py --docs 100000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

import lxml.html

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler import settings  # noqa: E402
from crawler.dedup import DedupConfig, Deduplicator  # noqa: E402
from crawler.dedup.sqlite import SQLiteDedupState  # noqa: E402


def rss_mb() -> float:
    """Current resident set size (MB)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def corpus_sentences() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests/seeds").glob("*.txt"))]
    manifest = {}
    for line in (REPO / "tests/corpus/manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if line:
            rec = json.loads(line)
            manifest[rec["id"]] = rec
    for page in sorted((REPO / "tests/corpus/pages").glob("*.html")):
        charset = manifest.get(page.stem, {}).get("charset_actual") or "utf-8"
        root = lxml.html.fromstring(page.read_bytes().decode(charset, errors="replace"))
        for bad in root.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        texts.append(root.text_content())
    sentences = set()
    for text in texts:
        for s in re.split(r"(?<=[。！？；])|\n", text):
            s = s.strip()
            if len(s) >= 12:
                sentences.add(s)
    return sorted(sentences)


def variant(text: str, rng: random.Random) -> str:
    """Same text with punctuation width and whitespace changed."""
    table = str.maketrans({"，": ",", "：": ":", "（": "(", "）": ")", "；": ";"})
    out = text.translate(table) if rng.random() < 0.5 else text.replace("\n", "\n\n ")
    return "  " + out + "\n"


def edit(text: str, rng: random.Random, fraction: float = 0.02) -> str:
    chars = list(text)
    spans = 6
    size = max(1, int(len(chars) * fraction) // spans)
    for _ in range(spans):
        start = rng.randrange(0, max(1, len(chars) - size))
        for j in range(start, start + size):
            chars[j] = chr(0x4E00 + rng.randrange(0, 20000))
    return "".join(chars)


def documents(n: int, seed: int = 7):
    """(url, text) pairs: 70% new, 12% exact copies, 10% 2% edits, 8% re-crawls."""
    rng = random.Random(seed)
    sentences = corpus_sentences()
    recent: deque[tuple[str, str]] = deque(maxlen=2000)  # bounded: the benchmark stays flat too
    for i in range(n):
        roll = rng.random()
        if recent and roll < 0.12:
            _, text = rng.choice(recent)
            yield f"http://copy{i % 50}.gov.cn/c/{i}.html", variant(text, rng)
        elif recent and roll < 0.22:
            _, text = rng.choice(recent)
            yield f"http://edit{i % 50}.gov.cn/e/{i}.html", edit(text, rng)
        elif recent and roll < 0.30:
            yield rng.choice(recent)
        else:
            parts, size = [], 0
            while size < 1500:
                s = rng.choice(sentences)
                parts.append(s)
                size += len(s)
            text = "\n".join(parts)
            url = f"http://site{i % 200}.gov.cn/art/{i}.html"
            recent.append((url, text))
            yield url, text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--state", help="SQLite file (default: a temporary directory)")
    ap.add_argument("--num-perm", type=int, help="default: the product's (DedupConfig)")
    ap.add_argument("--threshold", type=float, help="default: the product's (DedupConfig)")
    ap.add_argument("--sqlite-cache-kb", type=int, help="SQLite page cache (default: the "
                    "product's, GOVCRAWL_DEDUP_SQLITE_CACHE_KB)")
    ap.add_argument("--commit-every", type=int, default=settings.GOVCRAWL_STATE_COMMIT_ITEMS,
                    help="decisions per commit (default: the crawl's, GOVCRAWL_STATE_COMMIT_ITEMS)")
    ap.add_argument("--report-every", type=int, default=5000)
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory()
    path = Path(args.state) if args.state else Path(tmp.name) / "dedup.sqlite"
    # The product's state and settings (as `govcrawl crawl` opens them), but for what is given.
    state = SQLiteDedupState.from_uri(f"sqlite:///{path}", {
        "GOVCRAWL_DEDUP_SQLITE_CACHE_KB": args.sqlite_cache_kb})
    config = DedupConfig.from_settings({"GOVCRAWL_DEDUP_NUM_PERM": args.num_perm,
                                        "GOVCRAWL_DEDUP_THRESHOLD": args.threshold})
    args.num_perm, args.threshold = config.num_perm, config.threshold
    print(f"dedup settings: {config}; SQLite state as the crawl opens it (from_uri); a commit "
          f"every {args.commit_every} decisions", flush=True)
    dedup = Deduplicator(state, config)
    outcomes: Counter[str] = Counter()
    gen = documents(args.docs)
    rss_at: dict[int, float] = {}
    busy = cpu = 0.0
    start = time.perf_counter()
    edits = caught = 0
    for i, (url, text) in enumerate(gen, 1):
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = dedup.check(url, text).outcome
        busy += time.perf_counter() - t0
        cpu += time.process_time() - c0
        outcomes[outcome] += 1
        if url.startswith("http://edit"):
            edits += 1
            caught += outcome == "near_duplicate"
        t0, c0 = time.perf_counter(), time.process_time()
        if i % args.commit_every == 0:
            state.commit()
        busy += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if i % args.report_every == 0 or i == args.docs:
            rss_at[i] = round(rss_mb(), 1)
            print(f"{i:>7} docs  {i / busy:7.0f} docs/s (dedup time)  rss {rss_at[i]:.1f} MB",
                  flush=True)
    state.commit()
    wall = time.perf_counter() - start
    summary = {
        "docs": args.docs, "num_perm": args.num_perm, "threshold": args.threshold,
        "outcomes": dict(outcomes), "dedup_seconds": round(busy, 1), "wall_seconds": round(wall, 1),
        "docs_per_s": round(args.docs / busy), "ms_per_doc": round(busy / args.docs * 1e3, 3),
        "dedup_cpu_seconds": round(cpu, 1), "docs_per_cpu_s": round(args.docs / cpu),
        "near_duplicate_catch_rate": round(caught / edits, 4) if edits else None,
        "rss_mb": rss_at, "peak_rss_mb": round(peak_rss_mb(), 1),
        "state_mb": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6,
                          1),
        "state_rows": state.counts(),
    }
    state.close()
    tmp.cleanup()
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
