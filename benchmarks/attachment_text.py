"""Attachment text extraction: speed per format and peak memory, on real attachments.

Run ``python benchmarks/attachment_text.py [--dir /work/shared/corpus/attachments] [--rounds 5]
[--json]``.

Each file is read with :func:`pipelines.extract.read_attachment`, the function the crawl's
extraction workers run on every fetched attachment (product defaults: the readers and limits of
``crawler/tables/file_formats.yaml``). Speed: for ``--rounds`` rounds, the wall time and the CPU
time (this process plus its children: antiword/catdoc run as child processes for .doc) per file;
the median round is reported; files/s, MB/s and, for PDF, pages/s are per CPU second (one core;
the machine's load changes the wall time, not this). Memory: each file is read once more in a
fresh Python process; its peak RSS (``VmHWM``) is reported, and how much above a process that only
imported the readers (a .doc's antiword/catdoc runs as its own small process, not counted).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_DIR = Path("/work/shared/corpus/attachments")
if not DEFAULT_DIR.is_dir():
    DEFAULT_DIR = ROOT / "tests" / "fixtures" / "attachments"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _files(directory: Path) -> list[Path]:
    from crawler.extract.attachments import sniff

    found = []
    for path in sorted(directory.iterdir()):
        if path.is_file():
            kind = sniff(path.read_bytes())
            if kind is not None and not kind.binary:
                found.append(path)
    return found


def speed(path: Path, rounds: int) -> dict[str, object]:
    """Median wall and CPU seconds of reading ``path``, and what was read."""
    from pipelines.extract import read_attachment

    body = path.read_bytes()
    result, error = read_attachment(body)  # warm-up: the reader's imports
    if result is None:
        raise SystemExit(f"{path.name}: not read ({error})")
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), _cpu()
        read_attachment(body)
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    wall_s, cpu_s = statistics.median(walls), statistics.median(cpus)
    row: dict[str, object] = {
        "file": path.name, "format": result.format, "reader": result.reader,
        "bytes": len(body), "chars": result.chars, "pages": result.pages,
        "sheets": result.sheets, "wall_ms": round(wall_s * 1000, 1),
        "cpu_ms": round(cpu_s * 1000, 1), "files_per_s": round(1 / cpu_s, 1),
        "mb_per_s": round(len(body) / 2**20 / cpu_s, 2),
    }
    if result.pages:
        row["pages_per_s"] = round(result.pages / cpu_s, 1)
    return row


def _child_peak(path: Path | None) -> int:
    """Peak RSS (``VmHWM``, KiB) of a fresh process that imports the readers and reads ``path``
    (None: only imports them). Not ``ru_maxrss``: Linux keeps that across fork and exec, so a
    child would report this process's peak."""
    code = (
        "import re, sys; from pipelines.extract import read_attachment; "
        "import crawler.extract.attachments as a; a._table(); "
        "import pypdfium2, docx, python_calamine; "
        "p = sys.argv[1]; r = read_attachment(open(p, 'rb').read()) if p else None; "
        "s = open('/proc/self/status').read(); "
        "print(re.search(r'VmHWM:\\s*(\\d+)', s).group(1))")
    out = subprocess.run([sys.executable, "-c", code, str(path or "")], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def measure(directory: Path = DEFAULT_DIR, rounds: int = 5) -> dict[str, object]:
    files = _files(directory)
    if not files:
        raise SystemExit(f"no attachments of a known document type in {directory}")
    baseline = _child_peak(None)
    rows = []
    for path in files:
        row = speed(path, rounds)
        peak = _child_peak(path)
        row.update(peak_rss_mib=round(peak / 1024, 1),
                   above_baseline_mib=round(max(0, peak - baseline) / 1024, 1))
        rows.append(row)
    largest = max(rows, key=lambda r: int(r["bytes"]))  # type: ignore[arg-type]
    return {"directory": str(directory), "rounds": rounds,
            "baseline_rss_mib": round(baseline / 1024, 1), "files": rows,
            "largest": largest["file"], "largest_peak_rss_mib": largest["peak_rss_mib"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                    help=f"a directory of attachments (default {DEFAULT_DIR})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.dir.is_dir() or args.rounds < 1:
        print(f"attachment_text: no directory {args.dir} (or --rounds < 1)", file=sys.stderr)
        raise SystemExit(2)
    result = measure(args.dir, args.rounds)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{'file':<10} {'format':<6} {'reader':<15} {'KiB':>6} {'pages':>5} {'chars':>7} "
          f"{'wall ms':>8} {'CPU ms':>7} {'files/s':>8} {'MB/s':>6} {'pages/s':>8} {'peak MiB':>8}")
    for r in result["files"]:  # type: ignore[union-attr]
        print(f"{r['file']:<10} {r['format']:<6} {r['reader']:<15} {r['bytes'] / 1024:>6.0f} "
              f"{r['pages'] or '':>5} {r['chars']:>7} {r['wall_ms']:>8} {r['cpu_ms']:>7} "
              f"{r['files_per_s']:>8} {r['mb_per_s']:>6} {r.get('pages_per_s', ''):>8} "
              f"{r['peak_rss_mib']:>8}")
    print(f"peak RSS of a process that only imported the readers: {result['baseline_rss_mib']} "
          f"MiB; largest file {result['largest']}: {result['largest_peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
