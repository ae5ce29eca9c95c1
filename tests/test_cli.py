"""``govcrawl extract`` (in process) and ``govcrawl fetch`` with its errors (child processes)."""

from __future__ import annotations

import http.server
import json
import socket
from pathlib import Path

import pytest

from crawler.cli import main
from tests.conftest import CASSETTES, CORPUS, load_jsonl, local_server

PAGES = sorted((CORPUS / "pages").glob("*.html"))
MANIFEST = {m["id"]: m for m in load_jsonl(CORPUS / "manifest.jsonl")}
GOLD = {g["id"]: g for g in load_jsonl(CORPUS / "gold.jsonl")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_extract_every_corpus_page_prints_valid_json(page: Path, capsys):
    url = MANIFEST[page.stem]["url"] or f"https://{MANIFEST[page.stem]['site']}/"
    code = main(["extract", str(page), "--url", url, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    for key in ("url", "title", "published", "source", "publisher", "index_no", "doc_no",
                "text", "attachments", "spam", "removed"):
        assert key in data
    assert set(data["removed"]) >= {"boilerplate", "spam", "repeated"}
    if page.stem in GOLD:
        squash = "".join  # compare without whitespace: gold collapses it
        assert squash(GOLD[page.stem]["body_first"][:12].split()) in squash(data["text"].split())


def test_extract_gbk_page_decodes_to_chinese(tmp_path: Path, capsys):
    original = (CORPUS / "pages" / "003.html").read_bytes().decode("utf-8")
    gbk = original.replace('charset="UTF-8"', 'charset="gbk"')
    gbk = gbk.replace("charset=UTF-8", "charset=gbk")
    path = tmp_path / "gbk.html"
    path.write_bytes(gbk.encode("gbk", errors="xmlcharrefreplace"))
    assert main(["extract", str(path), "--url", MANIFEST["003"]["url"], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["title"] == GOLD["003"]["title"]
    assert "1-10月，全县固定资产投资完成246.79亿元" in data["text"]


def test_extract_missing_file_is_one_line_exit_2(capsys):
    assert main(["extract", "/nonexistent/page.html", "--url", "http://x.gov.cn/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("govcrawl: error: cannot read") and err.count("\n") == 1


# --- fetch against a local server -------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    article = (CORPUS / "pages" / "003.html").read_bytes()
    hits: list[str] = []  # every path requested, in order

    def do_GET(self):  # noqa: N802 (http.server API)
        self.hits.append(self.path)
        if self.path.startswith("/loop/"):  # /loop/0 -> /loop/1 -> /loop/2 -> /loop/0 ...
            self._redirect(f"/loop/{(int(self.path.rsplit('/', 1)[1]) + 1) % 3}")
        elif self.path == "/self":
            self._redirect("/self")
        elif self.path == "/session" and "sid=1" not in (self.headers.get("Cookie") or ""):
            self._redirect("/session", cookie="sid=1")  # first visit: set the session, again
        elif self.path in ("/art/2016/11/22/art_1621004_30332664.html", "/session"):
            self._send(200, "text/html; charset=utf-8", self.article)
        elif self.path == "/report.pdf":
            self._send(200, "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        else:
            self._send(404, "text/html; charset=utf-8", "<h1>404 页面不存在</h1>".encode())

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", f"{cookie}; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with local_server(_Handler) as base:
        yield base


def _one_line_error(proc) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_fetch_prints_clean_text(server, govcrawl):
    proc = govcrawl("fetch", f"{server}/art/2016/11/22/art_1621004_30332664.html", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["title"] == GOLD["003"]["title"]
    assert data["published"] == "2016-11-22"
    assert "浙ICP备05018911号" not in data["text"]


def test_fetch_404(server, govcrawl):
    line = _one_line_error(govcrawl("fetch", f"{server}/missing.html"))
    assert "404" in line


def test_fetch_non_html(server, govcrawl):
    line = _one_line_error(govcrawl("fetch", f"{server}/report.pdf"))
    assert "not an HTML page" in line and "application/pdf" in line


def test_fetch_dead_port(govcrawl):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = _one_line_error(govcrawl("fetch", f"http://127.0.0.1:{port}/index.html"))
    assert "connection refused" in line


@pytest.mark.parametrize("url", ["not a url", "ftp://example.gov.cn/x", "http:///nohost"])
def test_fetch_bad_url_exit_2(url, govcrawl):
    proc = govcrawl("fetch", url)
    assert proc.returncode == 2
    assert "not an http(s) URL" in _one_line_error(proc)


#: bad URLs -> words the one error line must have (checked before any request)
BAD_URLS = {
    "/" + "a" * 5000: "characters long, more than the 2,083",  # on the test server: a request
    # would show in its hits
    "http://127.0.0.1:99999/": "port 99999 is out of range (1-65535)",
    "http://127.0.0.1:0/": "port 0 is out of range",
    "http://127.0.0.1:8o8o/": "port '8o8o' is not a number",
    "http://[::1": "bad IPv6 address (a '[' without its ']')",
    "http://[::1]]/": "bad IPv6 address '[::1]]'",
    "http://[zz]/": "bad IPv6 address",
    "http://www..gov.cn/": "bad host name 'www..gov.cn'",
    "http://ex ample.gov.cn/": "bad host name",
    "http://999.1.1.1/": "bad IPv4 address '999.1.1.1'",
    "http://user:pw@127.0.0.1/": "user name or password",
}


@pytest.mark.parametrize("url", list(BAD_URLS), ids=lambda u: u[:24])
def test_fetch_refuses_a_bad_url_before_any_request(url, server, govcrawl):
    _Handler.hits.clear()
    proc = govcrawl("fetch", server + url if url.startswith("/") else url)
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert BAD_URLS[url] in line
    assert "Error" not in line and "Exception" not in line  # words, not exception names
    assert _Handler.hits == []


@pytest.mark.parametrize(("path", "requests"), [
    ("/self", ["/self"]), ("/loop/0", ["/loop/0", "/loop/1", "/loop/2"])])
def test_fetch_stops_a_redirect_loop_at_the_first_repeated_url(path, requests, server, govcrawl):
    _Handler.hits.clear()
    line = _one_line_error(govcrawl("fetch", server + path))
    chain = [server + p for p in [*requests, requests[0]]]
    assert line == f"govcrawl: fetch failed: redirect loop: {' -> '.join(chain)}"
    assert _Handler.hits == requests  # not the 21 requests of REDIRECT_MAX_TIMES


def test_fetch_follows_a_redirect_to_itself_that_sets_a_session_cookie(server, govcrawl):
    _Handler.hits.clear()
    proc = govcrawl("fetch", f"{server}/session", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["title"] == GOLD["003"]["title"]
    assert _Handler.hits == ["/session", "/session"]


def test_fetch_from_a_cassette_offline(govcrawl, tmp_path):
    url = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"
    proc = govcrawl("fetch", url, "--json", "--cassette", str(CASSETTES / "ningbo.yaml"),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["spam"] == ["bt365备用网站_365bet开户官网_365heart"] * 2
    assert "bt365" not in data["text"] and "bt365" not in data["title"]
    assert data["text"].startswith("2022年,全市法治政府建设工作坚持")
    assert not (tmp_path / "archive").exists()  # fetch keeps nothing unless --archive


def test_fetch_url_missing_from_cassette(govcrawl, tmp_path):
    url = "http://www.ningbo.gov.cn/art/2099/1/1/art_1_1.html"
    line = _one_line_error(govcrawl("fetch", url, "--cassette", str(CASSETTES / "ningbo.yaml"),
                                    cwd=tmp_path))
    assert url in line and "ningbo.yaml" in line


def test_fetch_with_archive_stores_the_document(govcrawl, tmp_path):
    url = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"
    args = ("fetch", url, "--json", "--cassette", str(CASSETTES / "ningbo.yaml"),
            "--archive", str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"))
    first = govcrawl(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["dedup"]["outcome"] == "new"
    assert len(list((tmp_path / "archive" / "docs").rglob("meta.json"))) == 1
    second = govcrawl(*args, cwd=tmp_path)
    assert json.loads(second.stdout)["dedup"]["outcome"] == "unchanged"
    assert len(list((tmp_path / "archive" / "docs").rglob("meta.json"))) == 1


def test_contact_url_setting_names_the_operator_in_the_user_agent():
    from crawler.runner import project_settings

    default = project_settings()["USER_AGENT"]
    assert default.startswith("govcrawl/") and "(+http" in default
    custom = project_settings({"GOVCRAWL_CONTACT_URL": "https://example.org/crawler"})
    assert custom["USER_AGENT"].endswith("(+https://example.org/crawler)")
