"""Incremental recrawls against a live local server: conditional GETs (ETag, Last-Modified)."""

from __future__ import annotations

import http.server
import json
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.conftest import CORPUS, local_server, run_govcrawl

A = "/zwgk/202305/t20230524_2093342.html"  # serves an ETag and honours If-None-Match
B = "/zwgk/202303/t20230314_2245991.html"  # serves Last-Modified; its text changes between crawls


class Site(http.server.BaseHTTPRequestHandler):
    pages = {A: (CORPUS / "pages" / "055.html").read_bytes(),
             B: (CORPUS / "pages" / "012.html").read_bytes()}
    seen: list[tuple[str, str | None, str | None]] = []
    edition = 1

    def do_GET(self):  # noqa: N802 (http.server API)
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        Site.seen.append((self.path, inm, ims))
        if self.path == "/robots.txt":
            robots = getattr(Site, "robots", b"User-agent: *\nAllow: /\n")
            return self._send(200, robots, "text/plain")
        if self.path == "/zwgk/index.html":
            links = "".join(f'<li><a href="{p}">文件</a></li>' for p in (A, B))
            page = f"<html><body><ul class='list'>{links}</ul></body></html>"
            return self._send(200, page.encode("utf-8"))
        if self.path == A:
            if inm == '"a-1"':
                return self._send(304, b"")
            return self._send(200, self.pages[A], etag='"a-1"')
        if self.path == B:
            body = self.pages[B]
            if Site.edition == 2:  # the notice was amended: its first article reads differently
                body = body.replace("第一条".encode(), "第一条（修订）".encode(), 1)
            return self._send(200, body, last_modified=formatdate(1_700_000_000 + Site.edition,
                                                                  usegmt=True))
        self._send(404, b"not found")

    def _send(self, status, body, content_type="text/html; charset=utf-8", etag=None,
              last_modified=None):
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        if last_modified:
            self.send_header("Last-Modified", last_modified)
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    Site.seen, Site.edition = [], 1
    with local_server(Site) as base:
        yield base


def test_revisit_sends_conditional_gets_and_keeps_versions(site, tmp_path: Path):
    profile = {"name": "local", "title": "本地测试站", "start_urls": [f"{site}/zwgk/index.html"],
               "allowed_domains": ["127.0.0.1"],
               "article_patterns": [r"/zwgk/\d{6}/t\d{8}_\d+\.html$"], "revisit": True}
    (tmp_path / "local.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
    args = ("crawl", "local", "--archive", str(tmp_path / "archive"), "--state-dir",
            str(tmp_path / "state"), "-s", "AUTOTHROTTLE_ENABLED=False")
    env = {"GOVCRAWL_PROFILES": str(tmp_path)}

    first = run_govcrawl(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert all(inm is None and ims is None for _path, inm, ims in Site.seen)

    Site.seen, Site.edition = [], 2
    second = run_govcrawl(*args, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    asked = {path: (inm, ims) for path, inm, ims in Site.seen}
    assert asked[A][0] == '"a-1"'  # revalidated with the stored ETag ...
    assert asked[B][1] == formatdate(1_700_000_001, usegmt=True)  # ... and Last-Modified

    metas = [json.loads(p.read_text()) for p in (tmp_path / "archive").rglob("meta.json")]
    versions = sorted((m["url"].split(":", 2)[2].split("/", 1)[1], m["version"]) for m in metas)
    assert versions == sorted([(A.lstrip("/"), 1), (B.lstrip("/"), 1), (B.lstrip("/"), 2)])
    [v2] = [m for m in metas if m["version"] == 2]
    assert v2["dedup"]["outcome"] == "changed"
    reports = sorted((json.loads(p.read_text()) for p in (tmp_path / "archive").rglob(
        "report.json")), key=lambda r: r["started"])
    assert reports[1]["not_modified"] == 1
    assert reports[1]["documents"]["changed"] == 1 and reports[1]["documents"]["new"] == 0


def test_robots_crawl_delay_is_honoured_even_with_autothrottle(site, tmp_path: Path):
    """robots.txt ``Crawl-delay: 1``: requests to the host are at least ~1 s apart, although
    AutoThrottle (start delay 0.05 s) would go faster."""
    import time

    Site.robots = b"User-agent: *\nCrawl-delay: 1\nAllow: /\n"
    stamps: list[tuple[str, float]] = []
    original = Site.do_GET

    def timed(handler):
        stamps.append((handler.path, time.monotonic()))
        original(handler)

    Site.do_GET = timed
    try:
        profile = {"name": "local", "title": "本地测试站",
                   "start_urls": [f"{site}/zwgk/index.html"], "allowed_domains": ["127.0.0.1"],
                   "article_patterns": [r"/zwgk/\d{6}/t\d{8}_\d+\.html$"]}
        (tmp_path / "local.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
        proc = run_govcrawl("crawl", "local", "--archive", str(tmp_path / "archive"),
                            "--state-dir", str(tmp_path / "state"),
                            "-s", "AUTOTHROTTLE_START_DELAY=0.05",
                            "-s", "RANDOMIZE_DOWNLOAD_DELAY=False",
                            env={"GOVCRAWL_PROFILES": str(tmp_path)}, cwd=tmp_path)
    finally:
        Site.do_GET = original
        del Site.robots
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "state" / "logs" / "local.log").read_text(encoding="utf-8")
    assert "Crawl-delay 1.0 s: honoured" in log  # the crawl log now goes to <state-dir>/logs/
    pages = [t for path, t in stamps if path != "/robots.txt"]
    assert len(pages) == 3
    gaps = [b - a for a, b in zip(pages, pages[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps
