"""The complete raw record (issue 15): a crawl's WARC holds every exchange it made, not only the
responses that became documents — robots.txt, list pages, each redirect hop, 404s.

The cassette is liuzhi's, minimally edited to show the cases: its list page links the article at
an older address that now answers ``301`` to the article's real URL, and links a second article
that is gone (``404``). Everything else (robots.txt, list page, article) is the bundled bytes.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import yaml
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import CASSETTES, run_govcrawl
from tests.crawled_archive import LIUZHI_URL

LIST_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/index.html"
ROBOTS_URL = "http://www.liuzhi.gov.cn/robots.txt"
#: the article's former address (edited in): answers 301 to LIUZHI_URL
MOVED_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202303/t20230327_78512300.html"
#: an article the list still links but the site removed (edited in): 404
GONE_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202302/t20230210_78400001.html"


def edited_cassette(target: Path) -> Path:
    data = yaml.safe_load((CASSETTES / "liuzhi.yaml").read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        if interaction["request"]["uri"] == LIST_URL:
            body = interaction["response"]["body"]["string"]
            old_href = 'href="202303/t20230328_78512345.html"'
            assert old_href in body
            body = body.replace(old_href, 'href="202303/t20230327_78512300.html"').replace(
                "</ul>", '<li><a href="202302/t20230210_78400001.html" target="_blank">'
                         "关于2022年度法治政府建设工作的通知</a><span>2023-02-10</span></li>\n</ul>")
            interaction["response"]["body"]["string"] = body
            interaction["response"]["headers"].pop("Content-Length", None)
    template = data["interactions"][0]
    for url, code, message, headers in (
            (MOVED_URL, 301, "Moved Permanently", {"Location": [LIUZHI_URL]}),
            (GONE_URL, 404, "Not Found", {"Content-Type": ["text/html"]})):
        data["interactions"].append({
            "request": {**template["request"], "uri": url},
            "response": {"status": {"code": code, "message": message},
                         "headers": {**headers, "Content-Length": ["0"]},
                         "body": {"string": ""}},
        })
    target.mkdir(parents=True, exist_ok=True)
    path = target / "liuzhi.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def warc_records(archive: Path) -> list[tuple[str, str, int | None, str]]:
    """(record type, target URI, HTTP status, WARC-Date) of every record in the archive's WARCs."""
    out = []
    for path in sorted(archive.glob("crawls/*/warc/*.warc.gz")):
        with path.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                status = rec.http_headers.get_statuscode() if (
                    rec.rec_type == "response" and rec.http_headers) else None
                out.append((rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"),
                            int(status) if status else None,
                            rec.rec_headers.get_header("WARC-Date")))
    return out


def test_warc_holds_every_exchange_and_wacz_indexes_them(tmp_path):
    cassettes = edited_cassette(tmp_path / "cassettes").parent
    archive, state = tmp_path / "archive", tmp_path / "state"
    proc = run_govcrawl("crawl", "liuzhi", "--cassettes", str(cassettes), "--archive",
                        str(archive), "--state-dir", str(state), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    records = warc_records(archive)
    responses = {(url, status) for kind, url, status, _ in records if kind == "response"}
    assert {(ROBOTS_URL, 200), (LIST_URL, 200), (MOVED_URL, 301), (GONE_URL, 404),
            (LIUZHI_URL, 200)} <= responses
    # each response with its request record; nothing written twice
    requests = [url for kind, url, _, _ in records if kind == "request"]
    assert sorted(requests) == sorted(url for kind, url, _, _ in records if kind == "response")
    assert len(requests) == len(set(requests))

    # the document points at the article's record, and its fetch time is that record's date
    (meta_path,) = archive.glob("docs/*/*/v1/meta.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert (meta["url"], meta["final_url"]) == (MOVED_URL, LIUZHI_URL)
    where = meta["pages"][0]["warc"]
    with (archive / where["key"]).open("rb") as fh:
        fh.seek(where["offset"])
        rec = next(iter(ArchiveIterator(fh)))
        assert rec.rec_type == "response"
        assert rec.rec_headers.get_header("WARC-Target-URI") == LIUZHI_URL
        assert rec.rec_headers.get_header("WARC-Date") == meta["fetched_at"]
        assert "按属地原则划分18个网格区域".encode() in rec.content_stream().read()

    # the WACZ indexes the list page, the redirect and the 404 too (replayable, auditable)
    out = tmp_path / "liuzhi.wacz"
    proc = run_govcrawl("archive", "export-wacz", "--site", "liuzhi", str(out), "--archive",
                        str(archive), "--state-dir", str(state), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as z:
        names = [n for n in z.namelist() if n.startswith("indexes/")]
        index = b"".join(gzip.decompress(z.read(n)) if n.endswith(".gz") else z.read(n)
                         for n in names).decode("utf-8", "replace")
    for url in (ROBOTS_URL, LIST_URL, MOVED_URL, GONE_URL):
        assert json.dumps(url)[1:-1] in index, url


CHALLENGED_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202302/t20230211_78400002.html"
BROKEN_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202302/t20230212_78400003.html"
CHALLENGE_PAGE = Path(__file__).resolve().parent / "fixtures" / "challenges" / (
    "cloudflare_managed_403.html")


def test_warc_holds_challenge_pages_and_every_retry_of_a_server_error(tmp_path):
    """A challenge page (the real Cloudflare 403) and a server error (500, retried) are exchanges
    too: each is in the WARC as received, every retry its own record, none of them a document."""
    path = edited_cassette(tmp_path / "cassettes")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    template = data["interactions"][0]
    for interaction in data["interactions"]:
        if interaction["request"]["uri"] == LIST_URL:
            interaction["response"]["body"]["string"] = interaction["response"]["body"][
                "string"].replace("</ul>", "".join(
                    f'<li><a href="{url.rsplit("/", 2)[1]}/{url.rsplit("/", 1)[1]}">{title}</a>'
                    "<span>2023-02-11</span></li>\n" for url, title in (
                        (CHALLENGED_URL, "关于开展法治宣传的通知"),
                        (BROKEN_URL, "关于法治政府建设的公告"))) + "</ul>")
    challenge = CHALLENGE_PAGE.read_text(encoding="utf-8")
    for url, code, message, body in ((CHALLENGED_URL, 403, "Forbidden", challenge),
                                     (BROKEN_URL, 500, "Internal Server Error", "error")):
        data["interactions"].append({
            "request": {**template["request"], "uri": url},
            "response": {"status": {"code": code, "message": message},
                         "headers": {"Content-Type": ["text/html; charset=UTF-8"],
                                     "Content-Length": [str(len(body.encode()))]},
                         "body": {"string": body}}})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    archive = tmp_path / "archive"
    proc = run_govcrawl("crawl", "liuzhi", "--cassettes", str(path.parent), "--archive",
                        str(archive), "--state-dir", str(tmp_path / "state"),
                        "-s", "RETRY_TIMES=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = warc_records(archive)
    responses = [(url, status) for kind, url, status, _ in records if kind == "response"]
    assert responses.count((CHALLENGED_URL, 403)) == 1
    assert responses.count((BROKEN_URL, 500)) == 3  # the first try and its 2 retries
    requests = [url for kind, url, _, _ in records if kind == "request"]
    assert sorted(requests) == sorted(url for url, _ in responses)
    with gzip.open(next(archive.glob("crawls/*/warc/*.warc.gz")), "rb") as fh:
        assert b"_cf_chl_opt" in fh.read()  # the challenge page's bytes, as received
    urls = {json.loads(p.read_text(encoding="utf-8"))["url"]
            for p in archive.glob("docs/*/*/v*/meta.json")}
    assert CHALLENGED_URL not in urls and BROKEN_URL not in urls
