"""Cassettes inside Scrapy (crawler/cassette.py): replay and record vcrpy cassettes.

Crawls run in a child process (the Twisted reactor cannot restart); a local http.server on
127.0.0.1 serves real corpus pages: UTF-8 (with CR CR LF line ends), the same page transcoded to GBK
(declared in the header, or only in <meta>), a gzip-compressed page and a binary file.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import vcr
import yaml
from vcr.request import Request as VcrRequest

from crawler.cassette import load_cassette
from tests.cassettes import Interaction, write_cassette

REPO = Path(__file__).resolve().parent.parent
PAGES = REPO / "tests" / "corpus" / "pages"
MANIFEST = REPO / "tests" / "corpus" / "manifest.jsonl"

UTF8_PAGE = (PAGES / "042.html").read_bytes()  # CR CR LF line ends: byte-exactness matters
_GBK_TEXT = (PAGES / "055.html").read_bytes().decode("utf-8").replace("utf-8", "gbk")
GBK_PAGE = _GBK_TEXT.encode("gbk", "xmlcharrefreplace")
GZIP_PAGE = (PAGES / "003.html").read_bytes()
BINARY = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + random.Random(7).randbytes(40_000)
ROBOTS = b"User-agent: *\nAllow: /\n"

#: path -> (response headers, body as served on the wire, body a client sees after decoding)
ROUTES: dict[str, tuple[dict[str, str], bytes, bytes]] = {
    "/robots.txt": ({"Content-Type": "text/plain"}, ROBOTS, ROBOTS),
    "/utf8.html": ({"Content-Type": "text/html; charset=utf-8"}, UTF8_PAGE, UTF8_PAGE),
    "/gbk.html": ({"Content-Type": "text/html; charset=GBK"}, GBK_PAGE, GBK_PAGE),
    "/gbk-meta.html": ({"Content-Type": "text/html"}, GBK_PAGE, GBK_PAGE),
    "/gzip.html": (
        {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
        gzip.compress(GZIP_PAGE),
        GZIP_PAGE,
    ),
    "/files/report.pdf": ({"Content-Type": "application/pdf"}, BINARY, BINARY),
}
PAGE_PATHS = [p for p in ROUTES if p != "/robots.txt"]
EXPECTED_TEXT = {
    "/utf8.html": UTF8_PAGE.decode("utf-8"),
    "/gbk.html": GBK_PAGE.decode("gbk"),
    "/gbk-meta.html": GBK_PAGE.decode("gbk"),
    "/gzip.html": GZIP_PAGE.decode("utf-8"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.server.hits.append(self.path)
        if self.path not in ROUTES:
            self.send_error(404)
            return
        headers, wire, _ = ROUTES[self.path]
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(wire)))
        self.end_headers()
        self.wfile.write(wire)

    def log_message(self, *args) -> None:
        pass


class Site:
    """A local http.server for one test; ``stop()`` it to prove replay needs no network."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.hits = []
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list[str]:
        return self.server.hits

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.stop()


# --- Scrapy in a child process ----------------------------------------------------------------

PROBE = textwrap.dedent(
    """
    import base64, json, sys
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.http import TextResponse
    from scrapy.settings import Settings
    from twisted.internet import defer
    from twisted.python.failure import Failure

    config = json.loads(sys.argv[1])
    runs = []

    class Probe(scrapy.Spider):
        name = "probe"

        async def start(self):
            for url in config["urls"]:
                yield scrapy.Request(url, dont_filter=True, errback=self.failed,
                                     meta=config.get("meta", {}))

        def parse(self, response):
            self.run["responses"].append({
                "url": response.url,
                "status": response.status,
                "class": type(response).__name__,
                "body": base64.b64encode(response.body).decode(),
                "text": response.text if isinstance(response, TextResponse) else None,
                "encoding": getattr(response, "encoding", None),
                "flags": response.flags,
                "content_encoding": response.headers.getlist("Content-Encoding") != [],
            })

        def failed(self, failure):
            self.run["errors"].append({
                "url": failure.request.url,
                "type": type(failure.value).__name__,
                "message": str(failure.value),
            })

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.setdict({"ITEM_PIPELINES": {}, "SPIDER_MODULES": [], "AUTOTHROTTLE_ENABLED": False,
                      "LOG_LEVEL": "INFO", **config["settings"]}, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=True)

    @defer.inlineCallbacks
    def crawl_all():
        for _ in range(config.get("crawls", 1)):
            run = {"responses": [], "errors": []}
            runs.append(run)
            crawler = process.create_crawler(Probe)
            yield process.crawl(crawler, run=run)
            run["stats"] = {k: v for k, v in crawler.stats.get_stats().items()
                            if k.startswith(("govcrawl/", "downloader/", "log_count/"))}

    def stop(result):
        from twisted.internet import reactor
        if isinstance(result, Failure):
            result.printTraceback()
        reactor.stop()

    crawl_all().addBoth(stop)
    process.start(stop_after_crawl=False)
    print("PROBE-RESULT " + json.dumps(runs))
    """
)


def crawl(tmp_path: Path, urls: list[str], crawls: int = 1, timeout: float = 120,
          meta: dict | None = None, **settings) -> list[dict]:
    """Crawl ``urls`` with the project's settings (plus ``settings``) in a child process."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE, encoding="utf-8")
    config = {"urls": urls, "crawls": crawls, "settings": settings, "meta": meta or {}}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE-RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"probe failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    runs = json.loads(lines[-1].removeprefix("PROBE-RESULT "))
    for run in runs:
        run["log"] = proc.stderr
        for r in run["responses"]:
            r["body"] = base64.b64decode(r["body"])
    return runs


def by_path(run: dict, site_or_base) -> dict[str, dict]:
    base = site_or_base if isinstance(site_or_base, str) else site_or_base.base
    return {r["url"].removeprefix(base): r for r in run["responses"]}


def assert_same_as_served(got: dict[str, dict], paths: list[str]) -> None:
    for path in paths:
        r = got[path]
        assert r["status"] == 200, path
        assert r["body"] == ROUTES[path][2], f"{path}: body differs"
        assert r["text"] == EXPECTED_TEXT.get(path), f"{path}: decoded text differs"
        assert r["class"] == ("Response" if path.endswith(".pdf") else "HtmlResponse"), path


# --- tests ------------------------------------------------------------------------------------


def test_vcrpy_requests_cassette_replays_in_scrapy(tmp_path, site):
    cassette = tmp_path / "requests.yaml"
    with vcr.use_cassette(str(cassette), record_mode="once"):
        served = {p: requests.get(site.url(p), timeout=10) for p in ROUTES}
    site.stop()
    assert all(r.content == ROUTES[p][2] for p, r in served.items())
    # The pitfall this handler deals with: vcrpy + requests keeps Content-Encoding: gzip next to a
    # body it stored already decoded.
    stored = yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"]
    gz = next(i["response"] for i in stored if i["request"]["uri"].endswith("/gzip.html"))
    assert gz["headers"]["Content-Encoding"] == ["gzip"]

    [run] = crawl(tmp_path, [site.url(p) for p in PAGE_PATHS], GOVCRAWL_CASSETTE=str(cassette))
    assert run["errors"] == []
    got = by_path(run, site)
    assert sorted(got) == sorted(PAGE_PATHS)
    assert_same_as_served(got, PAGE_PATHS)
    assert got["/gbk.html"]["encoding"] in ("gbk", "gb18030")
    assert got["/gbk-meta.html"]["encoding"] in ("gbk", "gb18030")
    assert all("cassette" in r["flags"] for r in got.values())
    assert not any(r["content_encoding"] for r in got.values())
    # robots.txt came from the cassette too: nothing reached the (stopped) server
    assert run["stats"]["govcrawl/cassette/replayed"] == len(PAGE_PATHS) + 1
    assert "govcrawl/errors/cassette_miss" not in run["stats"]


def test_scrapy_records_cassette_that_vcrpy_replays(tmp_path, site):
    cassettes = tmp_path / "cassettes"
    urls = [site.url(p) for p in PAGE_PATHS]
    [run] = crawl(tmp_path, urls, GOVCRAWL_CASSETTE_DIR=str(cassettes), GOVCRAWL_RECORD_MODE="once")
    assert run["errors"] == []
    got = by_path(run, site)
    assert_same_as_served(got, PAGE_PATHS)
    assert not any("cassette" in r["flags"] for r in got.values())  # they came from the network
    assert sorted(set(site.hits)) == sorted(ROUTES)
    assert run["stats"]["govcrawl/cassette/recorded"] == len(ROUTES)
    site.stop()

    path = cassettes / "probe.yaml"  # <dir>/<spider name>.yaml
    assert not [p for p in cassettes.iterdir() if p.name != "probe.yaml"]  # no temp file left
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    assert len(stored) == len(ROUTES)
    for i in stored:  # plain: decoded bodies, no Content-Encoding, a Content-Length that fits
        headers = {k.lower(): v for k, v in i["response"]["headers"].items()}
        assert "content-encoding" not in headers
        body = i["response"]["body"]["string"]
        size = len(body.encode("utf-8") if isinstance(body, str) else body)
        assert headers["content-length"] == [str(size)]

    with vcr.use_cassette(str(path), record_mode="none") as cass:
        replayed = {p: requests.get(site.url(p), timeout=10) for p in ROUTES}
        assert cass.all_played
    for p, r in replayed.items():
        assert r.status_code == 200
        assert r.content == ROUTES[p][2], p
        assert "Content-Encoding" not in r.headers
    assert replayed["/gbk.html"].text == EXPECTED_TEXT["/gbk.html"]  # charset from the header

    # ... and Scrapy replays it, twice in one process (repeats allowed), with the server stopped.
    runs = crawl(tmp_path, urls, crawls=2, GOVCRAWL_CASSETTE_DIR=str(cassettes))
    for again in runs:
        assert again["errors"] == []
        got = by_path(again, site)
        assert_same_as_served(got, PAGE_PATHS)
        assert all(r["flags"] == ["cassette"] for r in got.values())


def test_miss_in_replay_mode_fails_at_once(tmp_path, site):
    site.stop()  # nothing may be fetched
    cassette = tmp_path / "one.yaml"
    write_cassette(cassette, [
        Interaction(site.url("/robots.txt"), ROBOTS, headers={"Content-Type": "text/plain"}),
        Interaction(site.url("/utf8.html"), UTF8_PAGE, headers={"Content-Type": "text/html"}),
    ])
    before = cassette.read_bytes()
    missing = site.url("/not-recorded.html")
    [run] = crawl(tmp_path, [site.url("/utf8.html"), missing], timeout=60,
                  GOVCRAWL_CASSETTE=str(cassette), GOVCRAWL_RECORD_MODE="none")
    assert [r["url"] for r in run["responses"]] == [site.url("/utf8.html")]
    [error] = run["errors"]
    assert error["type"] == "CassetteMiss"
    assert missing in error["message"] and str(cassette) in error["message"]
    assert run["stats"]["govcrawl/errors/cassette_miss"] == 1
    assert "downloader/exception_type_count/crawler.cassette.CassetteMiss" in run["stats"]
    assert cassette.read_bytes() == before  # replay mode never writes


def test_write_cassette_from_real_pages(tmp_path):
    manifest = [json.loads(line) for line in MANIFEST.read_text(encoding="utf-8").splitlines()]
    pages = [m for m in manifest if m.get("url")][:8]
    hosts = sorted({"/".join(m["url"].split("/")[:3]) for m in pages})
    interactions = [Interaction(h + "/robots.txt", ROBOTS, headers={"Content-Type": "text/plain"})
                    for h in hosts]
    interactions += [
        Interaction(m["url"], (PAGES / f"{m['id']}.html").read_bytes(),
                    headers={"Content-Type": "text/html; charset=utf-8"})
        for m in pages
    ]
    # A saved page given with the header it was served with, still compressed, and a GBK page.
    gz_url = "http://www.example.gov.cn/zwgk/gz.html"
    interactions.append(Interaction(gz_url, gzip.compress(GZIP_PAGE), headers={
        "Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}))
    gbk_url = "http://www.example.gov.cn/xxgk/公开目录.html"
    interactions.append(Interaction(gbk_url, GBK_PAGE, headers={"Content-Type": "text/html"}))
    interactions.append(Interaction("http://www.example.gov.cn/robots.txt", ROBOTS))
    cassette = tmp_path / "saved.yaml"
    write_cassette(cassette, interactions)
    expected = {m["url"]: (PAGES / f"{m['id']}.html").read_bytes() for m in pages}
    expected[gz_url] = GZIP_PAGE

    # vcrpy loads it (record_mode none: nothing can leave the machine)
    with vcr.use_cassette(str(cassette), record_mode="none"):
        for url, body in expected.items():
            assert requests.get(url, timeout=10).content == body
        assert requests.get(gbk_url, timeout=10).content == GBK_PAGE

    [run] = crawl(tmp_path, [*expected, gbk_url], GOVCRAWL_CASSETTE=str(cassette))
    assert run["errors"] == []
    got = {r["url"]: r for r in run["responses"]}
    for url, body in expected.items():
        assert got[url]["body"] == body, url
        assert got[url]["text"] == body.decode("utf-8-sig")  # 012 starts with a BOM
    gbk = next(r for u, r in got.items() if "%E5%85%AC" in u)  # Scrapy's safe URL of 公开目录
    assert gbk["body"] == GBK_PAGE and gbk["text"] == EXPECTED_TEXT["/gbk.html"]
    assert "govcrawl/errors/cassette_miss" not in run["stats"]


def test_record_modes_new_episodes_and_all(tmp_path, site):
    cassette = tmp_path / "modes.yaml"
    stale = b"<html><body>old version</body></html>"
    write_cassette(cassette, [
        Interaction(site.url("/robots.txt"), ROBOTS),
        Interaction(site.url("/utf8.html"), stale, headers={"Content-Type": "text/html"}),
    ])
    urls = [site.url("/utf8.html"), site.url("/gzip.html")]

    [run] = crawl(tmp_path, urls, GOVCRAWL_CASSETTE=str(cassette),
                  GOVCRAWL_RECORD_MODE="new_episodes")
    got = by_path(run, site)
    assert got["/utf8.html"]["body"] == stale and got["/utf8.html"]["flags"] == ["cassette"]
    assert got["/gzip.html"]["body"] == GZIP_PAGE and "cassette" not in got["/gzip.html"]["flags"]
    assert site.hits == ["/gzip.html"]  # only the unmatched request went out
    uris = [r.uri for r in load_cassette(cassette).requests]
    assert uris == [site.url("/robots.txt"), site.url("/utf8.html"), site.url("/gzip.html")]

    [run] = crawl(tmp_path, urls, GOVCRAWL_CASSETTE=str(cassette), GOVCRAWL_RECORD_MODE="all")
    got = by_path(run, site)
    assert got["/utf8.html"]["body"] == UTF8_PAGE  # re-recorded from the server
    assert sorted(site.hits) == sorted(["/gzip.html", "/robots.txt", "/utf8.html", "/gzip.html"])
    recorded = load_cassette(cassette)
    assert len(recorded) == 3  # re-recorded interactions replace the old ones
    [utf8] = recorded.responses_of(VcrRequest("GET", urls[0], None, {}))
    assert utf8["body"]["string"] == UTF8_PAGE


def test_once_with_existing_cassette_refuses_new_requests(tmp_path, site):
    cassette = tmp_path / "once.yaml"
    write_cassette(cassette, [Interaction(site.url("/robots.txt"), ROBOTS)])
    [run] = crawl(tmp_path, [site.url("/utf8.html")], GOVCRAWL_CASSETTE=str(cassette),
                  GOVCRAWL_RECORD_MODE="once")
    [error] = run["errors"]
    assert error["type"] == "CassetteMiss" and "'once'" in error["message"]
    assert site.hits == []


def test_no_cassette_is_a_pass_through(tmp_path, site):
    [run] = crawl(tmp_path, [site.url(p) for p in PAGE_PATHS])
    assert run["errors"] == []
    got = by_path(run, site)
    assert_same_as_served(got, PAGE_PATHS)
    assert not any(r["flags"] for r in got.values())
    assert not [k for k in run["stats"] if k.startswith("govcrawl/cassette/")]


def test_recording_is_saved_when_the_crawl_stops_early(tmp_path, site):
    cassette = tmp_path / "early.yaml"
    urls = [site.url(p) for p in PAGE_PATHS]
    [run] = crawl(tmp_path, urls, GOVCRAWL_CASSETTE=str(cassette), GOVCRAWL_RECORD_MODE="once",
                  CLOSESPIDER_PAGECOUNT=2, CONCURRENT_REQUESTS=1)
    assert len(run["responses"]) < len(PAGE_PATHS)
    saved = load_cassette(cassette)
    assert len(saved) == run["stats"]["govcrawl/cassette/recorded"] >= 2
    for request, response in zip(saved.requests, saved.responses, strict=True):
        assert response["body"]["string"] == ROUTES[request.uri.removeprefix(site.base)][2]


@pytest.mark.parametrize("body", [
    UTF8_PAGE,
    GBK_PAGE,
    BINARY,
    b"\xef\xbb\xbf<p>BOM\r\n\r \t trailing \x00 NUL \xc2\x85 NEL \xe2\x80\xa8 LS</p>\n\n",
    b"\xff\xfe<\x00p\x00>\x00",  # UTF-16
    b"",
], ids=["utf8-crcrlf", "gbk", "binary", "controls", "utf16", "empty"])
def test_bodies_round_trip_byte_exact(tmp_path, body):
    cassette = tmp_path / "exact.yaml"
    write_cassette(cassette, [Interaction("http://www.example.gov.cn/a", body)])
    assert load_cassette(cassette).responses[0]["body"]["string"] == body
    with vcr.use_cassette(str(cassette), record_mode="none"):
        assert requests.get("http://www.example.gov.cn/a", timeout=10).content == body


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_records_through_playwright_handler(tmp_path, site):
    cassette = tmp_path / "rendered.yaml"
    playwright = {
        "GOVCRAWL_NETWORK_HANDLER": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": str(CHROMIUM), "args": [
            "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]},
        "ROBOTSTXT_OBEY": False,
    }
    url = site.url("/utf8.html")
    [run] = crawl(tmp_path, [url], meta={"playwright": True}, timeout=180,
                  GOVCRAWL_CASSETTE=str(cassette), GOVCRAWL_RECORD_MODE="once", **playwright)
    assert run["errors"] == []
    [live] = run["responses"]
    assert "playwright" in live["flags"]
    assert "习近平" in live["text"]  # the page as the browser rendered it
    site.stop()

    [run] = crawl(tmp_path, [url], meta={"playwright": True},
                  GOVCRAWL_CASSETTE=str(cassette), GOVCRAWL_RECORD_MODE="none", **playwright)
    [replayed] = run["responses"]
    assert replayed["flags"] == ["cassette"]
    assert replayed["body"] == live["body"] and replayed["text"] == live["text"]


# --- open cassettes belong to their crawler ---------------------------------------------------


def _recorded(url: str, body: bytes) -> tuple[VcrRequest, dict]:
    return Interaction(url, body, headers={"Content-Type": "text/html"}).to_vcr()


def test_two_crawlers_recording_into_one_cassette_keep_both(tmp_path):
    """No process-wide table shares an open cassette: each crawler saves its own recordings on top
    of what the file holds by then, so one crawler's save never drops another's."""
    from crawler.cassette import OpenCassette

    path = tmp_path / "shared.yaml"
    write_cassette(path, [Interaction("http://www.example.gov.cn/robots.txt", ROBOTS)])
    first = OpenCassette(load_cassette(path, "new_episodes"))
    second = OpenCassette(load_cassette(path, "new_episodes"))
    first.record(*_recorded("http://www.example.gov.cn/a.html", b"<p>a</p>"))
    second.record(*_recorded("http://www.example.gov.cn/b.html", b"<p>b</p>"))
    first.save()
    second.save()
    first.save()  # nothing new: the file stays as the second crawler left it
    saved = load_cassette(path)
    assert [r.uri for r in saved.requests] == [
        "http://www.example.gov.cn/robots.txt", "http://www.example.gov.cn/a.html",
        "http://www.example.gov.cn/b.html"]
    assert saved.responses[2]["body"]["string"] == b"<p>b</p>"


def test_each_crawl_in_a_process_replays_from_the_first_version(tmp_path):
    """Replay order is counted per crawler: a second crawl in the same process sees what a crawl
    in a new process sees (the first recorded version), not the next one."""
    url = "http://www.example.gov.cn/robots-free/page.html"
    cassette = tmp_path / "versions.yaml"
    write_cassette(cassette, [Interaction(url, b"<html><body>version 1</body></html>",
                                          headers={"Content-Type": "text/html"}),
                              Interaction(url, b"<html><body>version 2</body></html>",
                                          headers={"Content-Type": "text/html"})])
    runs = crawl(tmp_path, [url], crawls=2, GOVCRAWL_CASSETTE=str(cassette),
                 ROBOTSTXT_OBEY=False)
    assert [r["body"] for run in runs for r in run["responses"]] == [
        b"<html><body>version 1</body></html>"] * 2
