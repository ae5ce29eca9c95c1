"""Score extraction against the hand-checked gold set, side by side with plain trafilatura.

Run ``python benchmarks/extraction_quality.py [--corpus tests/corpus] [--json]``.

Per gold page: body F1 over character bigrams against the text of the gold ``body_selector`` element
(minus ``container_extra``; script/style/noscript dropped; whitespace ignored), leaks of
``must_not_contain`` strings, and exact title / published / 索引号 / 文号. :func:`score` returns the
numbers so that a test can assert floors on them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT / "tests" / "corpus"
_WS = re.compile(r"\s+")
FIELDS = ("title", "published", "index_no", "doc_no")


@dataclass
class Output:
    """What an extractor produced for one page (only the scored fields)."""

    text: str
    title: str | None = None
    published: str | None = None
    index_no: str | None = None
    doc_no: str | None = None


@dataclass
class PageScore:
    id: str
    f1: float
    precision: float
    recall: float
    leaks: list[str]
    exact: dict[str, bool | None]  # None: gold has no value for this field (not scored)


@dataclass
class Report:
    pages: list[PageScore] = field(default_factory=list)

    @property
    def mean_f1(self) -> float:
        return sum(p.f1 for p in self.pages) / len(self.pages) if self.pages else 0.0

    @property
    def min_f1(self) -> float:
        return min((p.f1 for p in self.pages), default=0.0)

    @property
    def leaks(self) -> int:
        return sum(len(p.leaks) for p in self.pages)

    def rate(self, name: str) -> tuple[int, int]:
        """(exact, scored) for a metadata field."""
        scored = [p.exact[name] for p in self.pages if p.exact[name] is not None]
        return sum(1 for x in scored if x), len(scored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_f1": round(self.mean_f1, 4),
            "min_f1": round(self.min_f1, 4),
            "leaks": self.leaks,
            **{f: list(self.rate(f)) for f in FIELDS},
            "pages": [p.__dict__ for p in self.pages],
        }


def load_gold(corpus: Path = DEFAULT_CORPUS) -> list[dict[str, Any]]:
    with open(corpus / "gold.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _squash(text: str) -> str:
    return _WS.sub("", text or "")


def reference_text(page_bytes: bytes, gold: dict[str, Any]) -> str:
    """The gold body: text of ``body_selector`` minus ``container_extra`` (whitespace kept)."""
    from crawler.extract import decode_html

    text, _ = decode_html(page_bytes)
    tree = lxml_html.document_fromstring(text)
    for bad in tree.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    nodes = tree.cssselect(gold["body_selector"])
    ref = " ".join(" ".join(n.itertext()) for n in nodes)
    ref = _WS.sub(" ", ref)
    for extra in gold.get("container_extra") or []:
        ref = ref.replace(extra, " ")
        ref = _squash_replace(ref, extra)
    return ref


def _squash_replace(text: str, extra: str) -> str:
    """Remove ``extra`` from ``text`` even when whitespace differs inside it."""
    pattern = r"\s*".join(re.escape(ch) for ch in _squash(extra))
    return re.sub(pattern, " ", text) if pattern else text


def bigram_f1(candidate: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) over multisets of character bigrams, whitespace ignored."""
    c, r = _squash(candidate), _squash(reference)
    cb = Counter(c[i : i + 2] for i in range(len(c) - 1))
    rb = Counter(r[i : i + 2] for i in range(len(r) - 1))
    if not cb or not rb:
        return 0.0, 0.0, 0.0
    overlap = sum((cb & rb).values())
    p, rec = overlap / sum(cb.values()), overlap / sum(rb.values())
    return p, rec, (2 * p * rec / (p + rec) if p + rec else 0.0)


def score_page(gold: dict[str, Any], page_bytes: bytes, out: Output) -> PageScore:
    ref = reference_text(page_bytes, gold)
    p, r, f1 = bigram_f1(out.text, ref)
    squashed = _squash(out.text)
    leaks = [s for s in gold.get("must_not_contain") or [] if _squash(s) in squashed]
    exact: dict[str, bool | None] = {}
    for name in FIELDS:
        want = gold.get(name)
        exact[name] = None if want is None else (getattr(out, name) == want)
    return PageScore(gold["id"], round(f1, 4), round(p, 4), round(r, 4), leaks, exact)


Extractor = Callable[[bytes, str], Output]


def ours(body: bytes, url: str) -> Output:
    from crawler.extract import extract

    doc = extract(body, url)
    return Output(doc.text, doc.title, doc.published, doc.index_no, doc.doc_no)


def plain_trafilatura(body: bytes, url: str) -> Output:
    import trafilatura

    from crawler.extract import decode_html

    text, _ = decode_html(body)
    res = trafilatura.bare_extraction(text, url=url or None, with_metadata=True)
    if res is None:
        return Output("")
    data = res.as_dict() if hasattr(res, "as_dict") else dict(res)
    return Output(data.get("text") or "", data.get("title"), data.get("date"))


def score(
    extractor: Extractor = ours, corpus: Path = DEFAULT_CORPUS, ids: Iterable[str] | None = None
) -> Report:
    """Score ``extractor`` on every gold page of ``corpus``."""
    manifest = {}
    with open(corpus / "manifest.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                manifest[rec["id"]] = rec
    wanted = set(ids) if ids else None
    report = Report()
    for gold in load_gold(corpus):
        if wanted and gold["id"] not in wanted:
            continue
        body = (corpus / "pages" / f"{gold['id']}.html").read_bytes()
        url = manifest.get(gold["id"], {}).get("url") or ""
        report.pages.append(score_page(gold, body, extractor(body, url)))
    return report


def _fmt_rate(rate: tuple[int, int]) -> str:
    return f"{rate[0]}/{rate[1]}"


def render(a: Report, b: Report, names: tuple[str, str] = ("ours", "trafilatura")) -> str:
    """A side-by-side table: per page, then overall."""
    mark = {True: "✓", False: "✗", None: "·"}
    head = f"{'id':>4} | {names[0]:^32} | {names[1]:^32}"
    cols = f"{'F1':>6} {'leak':>4} {'T D I N':>8}"
    sub = f"{'':>4} | {cols} {'':>10} | {cols}"
    lines = [head, sub, "-" * len(head)]
    for pa, pb in zip(a.pages, b.pages, strict=True):
        fa = " ".join(mark[pa.exact[f]] for f in FIELDS)
        fb = " ".join(mark[pb.exact[f]] for f in FIELDS)
        lines.append(
            f"{pa.id:>4} | {pa.f1:6.3f} {len(pa.leaks):4d} {fa:>8} {'':>10} | "
            f"{pb.f1:6.3f} {len(pb.leaks):4d} {fb:>8}"
        )
    lines.append("-" * len(head))
    for label, fn in [
        ("mean F1", lambda r: f"{r.mean_f1:.3f}"),
        ("worst F1", lambda r: f"{r.min_f1:.3f}"),
        ("leaks", lambda r: str(r.leaks)),
        *[(f, lambda r, f=f: _fmt_rate(r.rate(f))) for f in FIELDS],
    ]:
        lines.append(f"{label:>9}: {fn(a):>12} | {fn(b):>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--json", action="store_true", help="print both reports as JSON")
    args = ap.parse_args(argv)
    a, b = score(ours, args.corpus), score(plain_trafilatura, args.corpus)
    if args.json:
        print(json.dumps({"ours": a.to_dict(), "trafilatura": b.to_dict()}, ensure_ascii=False))
    else:
        print(render(a, b))
        for p in a.pages:
            if p.leaks:
                print(f"leak {p.id}: {p.leaks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
