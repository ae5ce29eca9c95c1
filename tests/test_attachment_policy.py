"""crawler.attachments: one table of attachment types for the spiders and extraction, and
meta.json naming each attachment's stored key and sha256."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from crawler import attachments
from crawler.extract import extract
from crawler.extract.lines import classify_line
from tests.conftest import CORPUS, REPO, local_server, run_govcrawl, static_site

ARTICLE_PATH = "/xxgk/ndbg/202101/t20210108_922970.html"
#: corpus 049 (a real TRS article whose attachment link is written by document.write), minimally
#: edited: its PDF attachment becomes an RTF one.
ARTICLE = (CORPUS / "pages" / "049.html").read_bytes().replace(
    b"P020210108586100144513.pdf", b"P020210108586100144513.rtf").replace(
    b"2020.1.8.pdf", b"2020.1.8.rtf")
#: A small RTF file (no real .rtf attachment is in the corpus): "附件 2020年度报表" in GBK.
RTF = (rb"{\rtf1\ansi\ansicpg936\deff0{\fonttbl{\f0\fnil\fcharset134 SimSun;}}"
       rb"\f0\fs24 \'b8\'bd\'bc\'fe 2020\'c4\'ea\'b6\'c8\'b1\'a8\'b1\'ed\par}")
LIST = (b'<html><head><meta charset="utf-8"><title>\xe5\xb9\xb4\xe5\xba\xa6\xe6\x8a\xa5\xe8\xa1'
        b'\xa8</title></head><body><ul><li><a href="./202101/t20210108_922970.html">'
        b'\xe6\x94\xbf\xe5\xba\x9c\xe7\xbd\x91\xe7\xab\x99\xe5\xb7\xa5\xe4\xbd\x9c\xe5\xb9\xb4'
        b'\xe5\xba\xa6\xe6\x8a\xa5\xe8\xa1\xa8</a></li></ul></body></html>')


def test_one_table_for_spider_and_extraction() -> None:
    """The spiders' test and extraction's list both come from crawler/tables/attachments.yaml;
    rtf (only the spider knew it) and ceb (only extraction knew it) are in both now."""
    for ext in ("rtf", "ceb", "pdf", "ofd", "wps", "et"):
        url = f"http://www.a.gov.cn/xxgk/P0201.{ext}"
        assert attachments.is_attachment(url), ext
        page = (f'<html><body><div class="article"><p>见附件</p><a href="{url}">附件1</a>'
                '</div></body></html>')
        assert [a["url"] for a in extract(page, "http://www.a.gov.cn/xxgk/t1.html").attachments] \
            == [url], ext
        assert classify_line(f"附件1：年度报表.{ext}", "after") == "attachment", ext
    for path in ("spiders/data/listing.yaml", "crawler/lexicons/metadata.yaml"):
        text = (REPO / path).read_text("utf-8")
        assert not re.search(r"^\s*attachment_ext", text, re.M), path


SITE = static_site({"/xxgk/ndbg/index.html": (LIST, "text/html; charset=utf-8"),
                    ARTICLE_PATH: (ARTICLE, "text/html; charset=utf-8"),
                    "/xxgk/ndbg/202101/P020210108586100144513.rtf": (RTF, "application/rtf")})


def test_rtf_attachment_is_listed_stored_and_named_in_meta_json(tmp_path: Path) -> None:
    with local_server(SITE) as base:
        profile = {"name": "rtfsite", "title": "本地测试站",
                   "start_urls": [f"{base}/xxgk/ndbg/index.html"],
                   "allowed_domains": ["127.0.0.1"],
                   "article_patterns": [r"/\d{6}/t\d{8}_\d+\.html$"]}
        (tmp_path / "rtfsite.yaml").write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
        proc = run_govcrawl("crawl", "rtfsite", "--archive", str(tmp_path / "archive"),
                            "--state-dir", str(tmp_path / "state"),
                            "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "ROBOTSTXT_OBEY=False",
                            env={"GOVCRAWL_PROFILES": str(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    archive = tmp_path / "archive"
    sha = hashlib.sha256(RTF).hexdigest()
    key = f"attachments/{sha[:2]}/{sha}/body"
    assert (archive / key).read_bytes() == RTF  # stored
    [meta_path] = archive.glob("docs/rtfsite/*/v1/meta.json")
    meta = json.loads(meta_path.read_text("utf-8"))
    assert meta["attachments"] == [{  # listed, pointing at the stored object
        "url": f"{base}/xxgk/ndbg/202101/P020210108586100144513.rtf", "name": "2020.1.8.rtf",
        "sha256": sha, "key": key}]
