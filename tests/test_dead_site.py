"""A site that gives nothing (every start URL refused, 404 or challenged) fails: exit 1."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.conftest import local_server, run_govcrawl


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_profile(folder: Path, name: str, start_urls: list[str]) -> None:
    profile = {"name": name, "title": "本地测试站", "start_urls": start_urls,
               "allowed_domains": ["127.0.0.1"],
               "article_patterns": [r"/zwgk/\d{6}/t\d{8}_\d+\.html$"]}
    (folder / f"{name}.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")


def crawl(tmp_path: Path, *sites: str):
    return run_govcrawl("crawl", *sites, "--archive", str(tmp_path / "archive"), "--state-dir",
                        str(tmp_path / "state"), "-s", "AUTOTHROTTLE_ENABLED=False",
                        "-s", "RETRY_TIMES=0", env={"GOVCRAWL_PROFILES": str(tmp_path)},
                        cwd=tmp_path)


def test_refused_start_urls_exit_1_with_one_line_for_the_site(tmp_path):
    port = closed_port()
    write_profile(tmp_path, "dead", [f"http://127.0.0.1:{port}/zwgk/index.html"])
    proc = crawl(tmp_path, "dead")
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "site down" in line]
    assert len(lines) == 1 and lines[0].startswith("govcrawl: dead: ")
    assert "connection refused" in lines[0]


class NotFound(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write("<html><body>页面不存在</body></html>".encode())

    def log_message(self, *args):
        pass


def test_a_site_whose_columns_all_404_exits_1(tmp_path):
    with local_server(NotFound) as base:
        write_profile(tmp_path, "gone", [f"{base}/zwgk/index.html", f"{base}/zwgk/tzgg/index.html"])
        proc = crawl(tmp_path, "gone")
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if "site down" in line]
    assert "all 2 start URL(s) failed" in line and "HTTP 404" in line


class SelfRedirect(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_start_url_that_redirects_to_itself_is_one_request_and_one_error(tmp_path):
    with local_server(SelfRedirect) as base:
        write_profile(tmp_path, "loop", [f"{base}/zwgk/index.html"])
        proc = crawl(tmp_path, "loop", "-s", "ROBOTSTXT_OBEY=False")
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if "site down" in line]
    assert f"redirect loop: {base}/zwgk/index.html -> {base}/zwgk/index.html" in line
    assert SelfRedirect.hits == ["/zwgk/index.html"]  # not REDIRECT_MAX_TIMES + 1 requests
    assert "loop: errors: RedirectLoop=1\n" in proc.stdout  # counted once
