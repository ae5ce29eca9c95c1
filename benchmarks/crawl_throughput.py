"""End-to-end crawl throughput against a local server, beside plain trafilatura on the same pages.

    python benchmarks/crawl_throughput.py [--pages 50000] [--no-peer] [--profile DIR]

Pages are generated from real corpus article templates (tests/corpus/pages) with their body
container refilled by varied text from the seed reports; list pages use TRS ``createPageHTML``
pagination. Some pages are exact duplicates of others (another URL), some near-duplicates (~2% of
characters edited) and some carry the injected spam line. A local twisted.web server (its own
process) serves them; ``govcrawl crawl`` (its own process) crawls them with the product's default
settings (except :data:`LOOPBACK`, printed first) and the real pipeline into a temporary local
archive. Then, against the same server and pages, the *peer*: the plain Scrapy project in
``benchmarks/peer`` (``trafilatura.extract`` in an item pipeline, a JSON Lines feed, every list page
a start URL). Reported: pages/s, CPU time per page (every process of the crawl), RSS at 5,000 pages,
at the end and at its peak, and plain ``trafilatura.extract`` on one core over a sample of the same
pages. The last line is ``ratio=<our pages/s / trafilatura pages/s> cpu_ratio=<trafilatura CPU ms
per page / our CPU ms per page> rss_growth=<RSS at end / RSS at 5k pages> peer_ratio=<our pages/s
/ the peer's pages/s>``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
#: Real article pages used as templates, and their body containers (from gold.jsonl).
TEMPLATES = ("012", "055", "054", "042")  # 20-83 KB, like most gov article pages
PER_LIST = 25
SPAM = "bt365备用网站_365bet开户官网_365heart"


# --- page generation ----------------------------------------------------------------------------


def _sentences() -> list[str]:
    seeds = sorted((REPO / "tests" / "seeds").glob("*.txt"))
    text = " ".join(p.read_text(encoding="utf-8") for p in seeds)
    parts = [s.strip() + "。" for s in re.split(r"[。\n]", text) if len(s.strip()) > 12]
    return [s for s in parts if "bt365" not in s]


def _templates() -> list[tuple[str, str]]:
    """(prefix, suffix) around the body container's content of each template page.

    A template's own 索引号 becomes ``@@INDEX@@`` so that every generated page has its own, as on a
    real portal (the same 索引号 on two pages would make them versions of one document).
    """
    import lxml.html

    gold = {}
    for line in (CORPUS / "gold.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        gold[record["id"]] = record
    out = []
    for page_id in TEMPLATES:
        tree = lxml.html.fromstring((CORPUS / "pages" / f"{page_id}.html").read_bytes())
        [body] = tree.cssselect(gold[page_id]["body_selector"])
        for child in list(body):
            body.remove(child)
        body.text = "@@BODY@@"
        for title in tree.iter("title"):
            title.text = "@@TITLE@@"
        html = lxml.html.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")
        if gold[page_id].get("index_no"):
            html = html.replace(gold[page_id]["index_no"], "@@INDEX@@")
        prefix, suffix = html.split("@@BODY@@")
        out.append((prefix, suffix))
    return out


class Site:
    """Deterministic pages: article i and list page n are the same every time they are asked for.

    ``duplicates=False``: no exact or near duplicates (every article its own document, whatever
    order a crawl meets them in)."""

    def __init__(self, n_pages: int, duplicates: bool = True):
        self.n_pages = n_pages
        self.duplicates = duplicates
        self.n_lists = (n_pages + PER_LIST - 1) // PER_LIST
        self.sentences = _sentences()
        self.templates = _templates()

    def article_url_path(self, i: int) -> str:
        """TRS-style: ``/xxgk/202303/t20230310_1000042.html`` (document ids have 7+ digits)."""
        month = f"2023{1 + i % 12:02d}"
        return f"/xxgk/{month}/t{month}{1 + i % 28:02d}_{1_000_000 + i}.html"

    def body(self, i: int) -> list[str]:
        kind = i % 20 if self.duplicates or i % 20 == 3 else 0
        if kind == 7 and i >= 7:  # exact duplicate of an earlier page, under another URL
            return self.body(i - 7)
        rng = random.Random(i)
        picked = iter(rng.sample(self.sentences, 96))  # a document does not repeat itself
        paragraphs = [
            "".join(next(picked) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(6, 24))
        ]
        if kind == 13 and i >= 13:  # near-duplicate: one passage (~2% of the text) rewritten
            base = "\n".join(self.body(i - 13))
            span = max(4, len(base) // 50)
            at = rng.randrange(max(1, len(base) - span))
            edit = "".join(rng.choice("的一是在不了有和人这中大为上个国") for _ in range(span))
            paragraphs = (base[:at] + edit + base[at + span:]).split("\n")
        if kind == 3:  # injected spam line between paragraphs
            paragraphs.insert(len(paragraphs) // 2, SPAM)
        return paragraphs

    def article(self, i: int) -> bytes:
        prefix, suffix = self.templates[i % len(self.templates)]
        paragraphs = self.body(i)
        title = f"关于{paragraphs[0][:18]}的通知（{i}）"
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
        page = prefix.replace("@@TITLE@@", title) + html + suffix
        return page.replace("@@INDEX@@", f"BENCH-2023-{i:06d}").encode("utf-8")

    def list_page(self, n: int) -> bytes:
        first = n * PER_LIST
        links = "".join(
            f'<li><a href="{self.article_url_path(i)}">文件{i}</a><span>2023-01-01</span></li>'
            for i in range(first, min(first + PER_LIST, self.n_pages))
        )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>政务公开</title></head><body>"
            f"<div class='list'><ul>{links}</ul></div><script>createPageHTML({self.n_lists}, {n},"
            ' "index", "html");</script></body></html>'
        ).encode()


# --- server -------------------------------------------------------------------------------------


def serve(n_pages: int, port_out, served) -> None:
    """Run in a child process: a twisted.web server of the generated site on 127.0.0.1."""
    from twisted.internet import reactor
    from twisted.web import resource, server

    site = Site(n_pages)
    article_re = re.compile(r"^/xxgk/\d{6}/t\d{8}_(\d+)\.html$")
    list_re = re.compile(r"^/xxgk/index(?:_(\d+))?\.html$")

    class Root(resource.Resource):
        isLeaf = True

        def render_GET(self, request):  # noqa: N802 (twisted API)
            path = request.path.decode()
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            if match := article_re.match(path):
                with served.get_lock():
                    served.value += 1
                return site.article(int(match.group(1)) - 1_000_000)
            if match := list_re.match(path):
                return site.list_page(int(match.group(1) or 0))
            request.setResponseCode(404)
            return b"not found"

    port = reactor.listenTCP(0, server.Site(Root()), interface="127.0.0.1")
    port_out.value = port.getHost().port
    reactor.run()


# --- measuring ------------------------------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")


def sample_tree(pid: int, cpu: dict[int, float]) -> int:
    """RSS (KiB) of a process and all its descendants; records each one's CPU seconds in ``cpu``.

    Extraction workers are children of multiprocessing's forkserver, so getrusage() of the crawl
    process does not see them: read /proc instead."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            cpu[current] = (int(fields[11]) + int(fields[12])) / TICK
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(current, [])
    return total


def plain_trafilatura_rate(site: Site, sample: int) -> float:
    import trafilatura

    pages = [site.article(i) for i in range(sample)]
    urls = [f"http://127.0.0.1{site.article_url_path(i)}" for i in range(sample)]
    start = time.process_time()
    for html, url in zip(pages, urls, strict=True):
        trafilatura.extract(html.decode("utf-8"), url=url)
    return sample / (time.process_time() - start)


#: What a loopback benchmark must change from the product's defaults (nothing else is set):
#: the local server has no robots.txt, answers at once, and is one host.
LOOPBACK = {
    "ROBOTSTXT_OBEY": "False",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",  # = Scrapy's CONCURRENT_REQUESTS (global) default
}


class Run:
    """One crawl process tree, sampled every 0.25 s: wall time, CPU of every process, RSS."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: str, served: Any,
                 early: int, pages: int):
        self.command, self.env, self.cwd = command, env, cwd
        self.served, self.early, self.pages = served, early, pages
        self.rss_early = self.rss_late = self.rss_peak = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.elapsed = 0.0
        self.output = ""
        self.returncode: int | None = None

    def run(self) -> Run:
        self.served.value = 0
        started = time.monotonic()
        with open(Path(self.cwd) / "stderr.log", "w") as err:
            proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            while proc.poll() is None:
                rss = sample_tree(proc.pid, self.cpu_by_pid)
                self.rss_peak = max(self.rss_peak, rss)
                if not self.rss_early and self.served.value >= self.early:
                    self.rss_early = rss
                if self.served.value >= self.pages:  # every page served; workers still alive
                    self.rss_late = self.rss_late or rss
                time.sleep(0.25)
        self.elapsed = time.monotonic() - started
        self.output = proc.stdout.read() if proc.stdout else ""
        self.returncode = proc.returncode
        self.pid = proc.pid
        return self

    @property
    def docs(self) -> int:
        return self.served.value

    @property
    def rate(self) -> float:
        return self.docs / self.elapsed

    @property
    def cpu(self) -> float:
        """CPU seconds of the whole tree (the last sample of each process: ~0.25 s blind)."""
        return sum(self.cpu_by_pid.values())

    def cpu_ms_per_page(self, pid: int | None = None) -> float:
        cpu = self.cpu_by_pid.get(pid, 0.0) if pid else self.cpu
        return 1000 * cpu / max(self.docs, 1)


def write_profile(base: str, pages: int, path: Path, name: str = "bench") -> Path:
    """The site profile (docs/adding-a-site.md; JSON is YAML) of the local site at ``base``."""
    path.write_text(json.dumps({
        "name": name, "title": "benchmark site", "start_urls": [f"{base}/xxgk/index.html"],
        "allowed_domains": ["127.0.0.1"], "article_patterns": [r"/t\d{8}_\d+\.html$"],
        "list_patterns": [r"/xxgk/index(_\d+)?\.html$"],
        "max_pages": pages // PER_LIST + 10, "max_depth": 1,
    }), encoding="utf-8")
    return path


def ours(base: str, args: argparse.Namespace, served: Any, tmp: str) -> Run:
    """``govcrawl crawl`` of the local site with the product's defaults + :data:`LOOPBACK`."""
    profile = write_profile(base, args.pages, Path(tmp) / "bench.yaml")
    python = [sys.executable]
    if args.profile:
        python += ["-m", "cProfile", "-o", str(Path(args.profile).resolve() / "crawl.prof")]
    command = [*python, "-m", "crawler.cli", "crawl", "bench",
               "--archive", f"{tmp}/archive", "--state-dir", f"{tmp}/state"]
    for name, value in LOOPBACK.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "GOVCRAWL_PROFILES": str(profile), "PYTHONPATH": str(REPO)}
    run = Run(command, env, tmp, served, args.early, args.pages).run()
    files = Path(tmp, "archive").rglob("*")
    run.archive_bytes = sum(f.stat().st_size for f in files if f.is_file())
    return run


def peer(base: str, site: Site, args: argparse.Namespace, served: Any, tmp: str) -> Run:
    """The plain Scrapy project in benchmarks/peer, handed every list page as a start URL."""
    lists = [f"{base}/xxgk/index{'' if n == 0 else f'_{n}'}.html" for n in range(site.n_lists)]
    start_file = Path(tmp) / "lists.txt"
    start_file.write_text("\n".join(lists), encoding="utf-8")
    command = [sys.executable, "-m", "scrapy", "crawl", "articles", "-a",
               f"start_file={start_file}", "-O", f"{tmp}/peer.jsonl"]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "peer.settings",
           "PYTHONPATH": str(REPO / "benchmarks" / "peer")}
    run = Run(command, env, tmp, served, args.early, args.pages).run()
    with open(f"{tmp}/peer.jsonl", encoding="utf-8") as fh:
        run.items = sum(1 for _ in fh)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50_000, help="article pages to crawl")
    parser.add_argument("--sample", type=int, default=2_000, help="pages for plain trafilatura")
    parser.add_argument("--early", type=int, default=5_000, help="RSS compared at this count")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain Scrapy project")
    parser.add_argument("--profile", metavar="DIR",
                        help="run our crawl under cProfile, writing DIR/crawl.prof")
    args = parser.parse_args()

    port, served = multiprocessing.Value("i", 0), multiprocessing.Value("l", 0)
    server = multiprocessing.Process(target=serve, args=(args.pages, port, served), daemon=True)
    server.start()
    for _ in range(200):
        if port.value:
            break
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port.value}"
    site = Site(args.pages)
    workers = len(os.sched_getaffinity(0))
    print("product defaults, except what a loopback benchmark must change: "
          + ", ".join(f"{k}={v}" for k, v in LOOPBACK.items())
          + f" (GOVCRAWL_EXTRACT_WORKERS=auto: {workers} on this machine)", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="govcrawl-bench-") as tmp:
            us = ours(base, args, served, tmp)
        them = None
        if not args.no_peer:
            with tempfile.TemporaryDirectory(prefix="govcrawl-bench-peer-") as tmp:
                them = peer(base, site, args, served, tmp)
    finally:
        server.terminate()
        server.join(5)
    plain = plain_trafilatura_rate(site, min(args.sample, args.pages))
    plain_ms = 1000 / plain
    print(us.output.strip())
    print(f"articles served={us.docs} of {args.pages}; crawl exit code {us.returncode}")
    print(f"end-to-end: {us.rate:.1f} pages/s over {us.elapsed:.1f} s wall, "
          f"{us.cpu_ms_per_page():.2f} ms CPU/page in the crawl's processes "
          f"({us.cpu_ms_per_page(us.pid):.2f} in the Scrapy process, the rest in "
          f"{workers} extraction workers)")
    print(f"archive: {us.archive_bytes / 1e6:.1f} MB")
    print(f"plain trafilatura.extract: {plain:.1f} pages/s = {plain_ms:.2f} ms CPU/page on one "
          f"core ({min(args.sample, args.pages)} of the same pages)")
    print(f"RSS (crawl process tree): {us.rss_early / 1024:.0f} MiB at {args.early} pages, "
          f"{us.rss_late / 1024:.0f} MiB at {args.pages}, peak {us.rss_peak / 1024:.0f} MiB")
    peer_part = ""
    if them is not None:
        print(f"peer (plain Scrapy + trafilatura pipeline + JSON Lines feed, benchmarks/peer): "
              f"{them.rate:.1f} pages/s over {them.elapsed:.1f} s wall, "
              f"{them.cpu_ms_per_page():.2f} ms CPU/page, {them.items} items of {them.docs} "
              f"articles served, exit code {them.returncode}")
        peer_part = f" peer_ratio={us.rate / them.rate:.2f}"
    growth = us.rss_late / us.rss_early if us.rss_early and us.rss_late else float("nan")
    print(f"ratio={us.rate / plain:.2f} cpu_ratio={plain_ms / us.cpu_ms_per_page():.2f} "
          f"rss_growth={growth:.2f}{peer_part}")
    ok = us.returncode == 0 and (them is None or them.returncode == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
