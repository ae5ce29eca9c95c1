"""``govcrawl fetch URL`` files the page under the profile that covers the URL (as a crawl does),
and under its host name when no profile does."""

from __future__ import annotations

import http.server
import json

from crawler.profiles import parse_profile, profile_for_url
from tests.conftest import CASSETTES, CORPUS, local_server, run_govcrawl


def _profile(name: str, domains: list[str], articles: list[str]):
    return parse_profile({"name": name, "title": name, "allowed_domains": domains,
                          "start_urls": [f"https://{domains[0]}/zwgk/index.html"],
                          "article_patterns": articles})


def test_profile_for_url_prefers_a_pattern_match_then_the_longest_domain():
    city = _profile("city", ["wuhan.gov.cn"], [r"/zwgk/.+/t\d{8}_\d+\.html$"])
    bureau = _profile("bureau", ["gsj.wuhan.gov.cn"], [r"/xxgk/\d+\.html$"])
    profiles = {"city": city, "bureau": bureau}
    art = "http://gsj.wuhan.gov.cn:9091/zwgk/zcfg/201803/t20180314_224599.html"
    assert profile_for_url(art, profiles) is city  # its article pattern matches
    assert profile_for_url("http://gsj.wuhan.gov.cn/about.html", profiles) is bureau  # longest
    assert profile_for_url("http://www.wuhan.gov.cn/about.html", profiles) is city
    assert profile_for_url("http://wuhan.gov.cn.example.com/a.html", profiles) is None


def test_fetch_of_a_profiled_url_files_under_the_profile(tmp_path):
    url = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"
    proc = run_govcrawl("fetch", url, "--json", "--cassette", str(CASSETTES / "ningbo.yaml"),
                        "--archive", str(tmp_path / "archive"),
                        "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [meta] = (tmp_path / "archive" / "docs").rglob("meta.json")
    assert meta.relative_to(tmp_path / "archive" / "docs").parts[0] == "ningbo"
    assert json.loads(meta.read_text("utf-8"))["site"] == "ningbo"


class _Article(http.server.BaseHTTPRequestHandler):
    body = (CORPUS / "pages" / "003.html").read_bytes()

    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_fetch_of_an_unprofiled_url_keeps_the_host_name(tmp_path):
    with local_server(_Article) as base:
        proc = run_govcrawl("fetch", f"{base}/art/2016/11/22/art_1621004_30332664.html",
                            "--archive", str(tmp_path / "archive"),
                            "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [meta] = (tmp_path / "archive" / "docs").rglob("meta.json")
    assert meta.relative_to(tmp_path / "archive" / "docs").parts[0] == "127.0.0.1"
