"""``render: true`` profiles: list pages rendered by Chromium (scrapy-playwright) so links built
by JavaScript are found. Served on 127.0.0.1; needs Debian's /usr/bin/chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import REPO, local_server

CHROMIUM = Path("/usr/bin/chromium")

LIST_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>通知公告</title></head>
<body><ul id="list"></ul>
<script>
  // the column's records arrive as data and become links only in the browser
  var records = [["202401/t20240105_1001.html", "关于开展安全生产检查的通知"],
                 ["202401/t20240110_1002.html", "关于印发年度工作要点的通知"]];
  var ul = document.getElementById("list");
  records.forEach(function (r) {
    var li = document.createElement("li"), a = document.createElement("a");
    a.href = r[0]; a.textContent = r[1]; li.appendChild(a); ul.appendChild(li);
  });
</script></body></html>"""

ARTICLE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<div class="TRS_Editor"><p>各单位：现将有关事项通知如下。</p></div></body></html>"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        pages = {
            "/robots.txt": ("text/plain", "User-agent: *\nDisallow:\n"),
            "/tzgg/index.html": ("text/html; charset=utf-8", LIST_PAGE),
            "/tzgg/202401/t20240105_1001.html": ("text/html; charset=utf-8",
                                                  ARTICLE.format(title="关于开展安全生产检查的通知")),
            "/tzgg/202401/t20240110_1002.html": ("text/html; charset=utf-8",
                                                  ARTICLE.format(title="关于印发年度工作要点的通知")),
        }
        if self.path not in pages:
            self.send_error(404)
            return
        ctype, text = pages[self.path]
        body = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with local_server(Handler) as base:
        yield base


def crawl(base: str, tmp_path: Path, render: bool) -> list[dict]:
    profiles = tmp_path / f"profiles_{render}"
    profiles.mkdir()
    (profiles / "jsdemo.yaml").write_text(json.dumps({
        "name": "jsdemo", "title": "JS-rendered column", "render": render,
        "start_urls": [f"{base}/tzgg/index.html"], "allowed_domains": ["127.0.0.1"],
        "article_patterns": [r"/\d{6}/t\d{8}_\d+\.html$"],
    }), encoding="utf-8")
    log = tmp_path / f"crawl_{render}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOVCRAWL_PROFILES": str(profiles)}
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "jsdemo", "-s", "ITEM_PIPELINES={}",
         "-s", f"GOVCRAWL_STATE_DIR={tmp_path / 'state'}", "-s", f"GOVCRAWL_CRAWL_LOG={log}",
         "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "LOG_LEVEL=WARNING",
         "-s", "GOVCRAWL_INCREMENTAL=False"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
            if line] if log.exists() else []


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) absent")
def test_links_built_by_javascript_are_found_when_rendered(server, tmp_path):
    rows = crawl(server, tmp_path, render=True)
    items = {(r["url"], r["link_text"]) for r in rows if r["event"] == "item"}
    assert items == {
        (f"{server}/tzgg/202401/t20240105_1001.html", "关于开展安全生产检查的通知"),
        (f"{server}/tzgg/202401/t20240110_1002.html", "关于印发年度工作要点的通知"),
    }


def test_without_rendering_the_column_looks_empty(server, tmp_path):
    rows = crawl(server, tmp_path, render=False)
    assert [r for r in rows if r["event"] == "item"] == []
    assert [r["role"] for r in rows if r["event"] == "response"] == [None, "list"]
