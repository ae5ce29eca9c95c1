"""CPU cost of extraction per page, and of its parse step alone, on the real corpus pages.

Run ``python benchmarks/extract_throughput.py [--corpus tests/corpus] [--rounds 5] [--json]``.

Every page of the corpus is decoded once (decoding is not timed), then, for ``--rounds`` rounds,
parsed with :func:`crawler.extract.dom.parse` (the one parse function of extraction and the page
objects) and extracted with :func:`crawler.extract.extract` (which parses again itself). Times are
process CPU time on one core; the figure per page is the median over rounds of the mean over pages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from crawler.extract import decode_html, extract  # noqa: E402
from crawler.htmltree import parse  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "corpus"


def _load(corpus: Path) -> list[tuple[str, bytes, str]]:
    manifest = {}
    for line in (corpus / "manifest.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            manifest[rec["id"]] = rec["url"]
    pages = []
    for path in sorted((corpus / "pages").glob("*.html")):
        body = path.read_bytes()
        text, _ = decode_html(body, None)
        pages.append((manifest.get(path.stem, path.resolve().as_uri()), body, text))
    return pages


def _per_page_ms(run, pages: list, rounds: int) -> float:
    means = []
    for _ in range(rounds):
        start = time.process_time()
        for page in pages:
            run(page)
        means.append((time.process_time() - start) * 1000 / len(pages))
    return statistics.median(means)


def measure(corpus: Path = DEFAULT_CORPUS, rounds: int = 5) -> dict[str, float]:
    """``{"pages", "parse_ms", "extract_ms", "extract_pages_per_s"}`` (CPU ms per page)."""
    pages = _load(corpus)
    extract(pages[0][1], pages[0][0])  # warm-up: lexicons, trafilatura's imports
    parse_ms = _per_page_ms(lambda p: parse(p[2]), pages, rounds)
    extract_ms = _per_page_ms(lambda p: extract(p[1], p[0]), pages, rounds)
    return {"pages": len(pages), "parse_ms": round(parse_ms, 2), "extract_ms": round(extract_ms, 2),
            "extract_pages_per_s": round(1000 / extract_ms, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure(args.corpus, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['pages']} pages, CPU per page on one core: parse {result['parse_ms']:.2f} ms, "
          f"extract {result['extract_ms']:.2f} ms ({result['extract_pages_per_s']:.1f} pages/s)")


if __name__ == "__main__":
    main()
