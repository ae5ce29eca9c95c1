"""Portal spiders: profiles, spider loading, offline crawls of every profile from its cassette,
and a second (incremental) crawl. Crawls run in child processes (``scrapy crawl``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crawler.profiles import ProfileError, load_profiles, parse_profile
from tests.conftest import CASSETTES, REPO

PROFILES = load_profiles()
#: These crawls stop after dedup (which records the URL state); tests/test_crawl.py runs the
#: same crawls through the archive and checks what it stores.
PIPELINES = json.dumps({"pipelines.extract.ExtractionPipeline": 100,
                        "pipelines.dedup.DedupPipeline": 300})

#: What an offline crawl of each cassette must yield: (kind, URL, number of stitched pages).
EXPECTED = {
    "atxlyj": {("article", "https://www.atxlyj.cn/xxgk/ndbg/201903/t20190307_633608.html", 0),
               ("article", "https://www.atxlyj.cn/xxgk/ndbg/202101/t20210108_922970.html", 0),
               ("attachment",
                "https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108586100144513.pdf", 0)},
    "cmse": {("article", "http://www.cmse.gov.cn/ztbd/xwfbh/201206/t20120624_43188.html", 0)},
    "gulou": {("article", "http://www.hc.gov.cn/zwgk_265/fdzdgknr/fzzfjs/202503/"
                          "t20250310_14356789.html", 1)},
    "gzdzhrss": {
        ("article", "https://www.gzdzhrss.com/gzdt/xydt/201705/t20170524_20933426.html", 0),
        ("article", "https://www.gzdzhrss.com/bmgk/jcdd/zcfg_62443/201708/"
                    "t20170811_21251018.html", 0),
        ("article", "https://www.gzdzhrss.com/zwgk/bmwj/201707/t20170702_21164061.html", 0)},
    "hexinhua": {("article", "http://www.he.news.cn/20240515/d59c39d4160a4fe4b3084c3e4abfb450/"
                             "c.html", 0)},
    "kepu": {("article", "http://www.kepu.gov.cn/politics/2023-12/01/content_1755244.html", 0)},
    "liuzhi": {("article", "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202303/"
                           "t20230328_78512345.html", 0)},
    "ningbo": {("article", "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html",
                0)},
    "people": {("article", "http://finance.people.com.cn/n1/2024/0510/c1004-40232587.html", 0),
               ("article", "http://health.people.com.cn/n1/2024/0517/c14739-40237861.html", 0)},
    "qlyn": {("article", "http://www.ynjjjc.gov.cn/html/2021/zsdt_1206/12345.html", 0)},
    "shanxi": {("article", "http://www.shanxi.gov.cn/yw/sxyw/201909/t20190918_693227.shtml", 0)},
    "tzw": {("article", "http://www.tzwsfq.gov.cn/xxgkml/ggs/202303/t20230310_1234567.html", 0)},
    "wanzai": {("article", "http://www.wanzai.gov.cn/wzxrmzf/tjsja/202305/"
                           "7215380191c5400397df5d7d0b5fd06b.shtml", 0),
               ("article", "http://www.wanzai.gov.cn/wzxrmzf/tjgb/201705/"
                           "9c059bf058ef4db8b3c8f920e22186fe.shtml", 0)},
    "whgsj": {("article", "http://gsj.wuhan.gov.cn:9091/zwgk/whgszwgk/zwgk/zcfg/fl/201803/"
                          "t20180314_224599.html", 0)},
    "yichun": {("article", "https://www.yichun.gov.cn/ycsrmzf/tjgb/202304/"
                           "3f093ec317ba4609b241d0c79175c7cd.shtml", 0)},
    "zjfgw": {("article", "http://fgw.zj.gov.cn/art/2016/11/22/art_1621004_30332664.html", 0)},
}


def scrapy_crawl(name: str, state_dir: Path, log: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scrapy", "crawl", name,
           "-s", f"GOVCRAWL_CASSETTE_DIR={CASSETTES}", "-s", f"GOVCRAWL_STATE_DIR={state_dir}",
           "-s", f"GOVCRAWL_CRAWL_LOG={log}", "-s", f"ITEM_PIPELINES={PIPELINES}",
           "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "LOG_LEVEL=WARNING", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def crawls(tmp_path_factory):
    """Every profile crawled twice from its cassette with one state dir per profile."""
    root = tmp_path_factory.mktemp("crawls")

    def run(name: str) -> tuple[str, list, list, list]:
        state = root / name
        procs, logs = [], []
        for i in (1, 2):
            log = root / f"{name}.{i}.jsonl"
            procs.append(scrapy_crawl(name, state, log))
            logs.append(read_log(log))
        return name, procs, logs[0], logs[1]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, sorted(PROFILES)))
    return {name: (procs, first, second) for name, procs, first, second in results}


# --- profiles -------------------------------------------------------------------------------

def test_every_profile_has_a_cassette_and_readme_line():
    readme = (CASSETTES / "README.md").read_text(encoding="utf-8")
    for name in PROFILES:
        assert (CASSETTES / f"{name}.yaml").exists(), name
        assert f"`{name}.yaml`" in readme, name
    assert {"liuzhi", "tzw", "ningbo", "gulou", "qlyn"} <= set(PROFILES)


def test_profile_fields():
    ningbo = PROFILES["ningbo"]
    assert ningbo.title == "宁波市人民政府" and ningbo.cms == "hanweb"
    assert ningbo.is_article("http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html")
    assert not ningbo.is_article("http://www.ningbo.gov.cn/col/col1229116967/index.html")
    for profile in PROFILES.values():
        assert profile.schedule and profile.max_pages > 0 and profile.render is False


BASE = {"name": "demo", "title": "示例", "start_urls": ["http://www.a.gov.cn/zwgk/index.html"],
        "allowed_domains": ["www.a.gov.cn"], "article_patterns": [r"/t\d{8}_\d+\.html$"]}


@pytest.mark.parametrize("change,message", [
    ({"schedule": "every day"}, "schedule 'every day' is not a valid cron expression"),
    ({"schedule": "0 25 * * *"}, "not a valid cron expression"),
    ({"start_urls": ["http://evil.example.com/"]}, "outside allowed_domains"),
    ({"article_patterns": ["(unclosed"]}, "not a valid regular expression"),
    ({"max_pages": 0}, "max_pages must be between"),
    ({"render": "yes"}, "field 'render' must be a bool"),
    ({"titel": "x"}, "unknown field(s) titel"),
    ({"name": "Bad Name"}, "must be lower-case"),
    ({"name": "fetch"}, "reserved"),
    ({"selectors": {"list": "ul[["}}, "not a valid CSS selector"),
    ({"title": None}, "missing required field 'title'"),
])
def test_profile_errors_are_clear(change, message):
    with pytest.raises(ProfileError) as err:
        parse_profile({**BASE, **change}, "demo.yaml")
    assert str(err.value).startswith("demo.yaml: ") and message in str(err.value)


def test_profile_name_must_match_file(tmp_path):
    (tmp_path / "other.yaml").write_text(json.dumps(BASE), encoding="utf-8")
    with pytest.raises(ProfileError, match="must match the file name"):
        load_profiles(tmp_path)
    (tmp_path / "other.yaml").write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ProfileError, match="invalid YAML"):
        load_profiles(tmp_path)


# --- spider loading -------------------------------------------------------------------------

def test_scrapy_list_shows_one_spider_per_profile_and_fetch():
    proc = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(proc.stdout.split()) == set(PROFILES) | {"fetch"}


def test_every_spider_yields_requests():
    from scrapy.utils.test import get_crawler

    from spiders import PROFILE_SPIDERS

    async def first_requests(cls):
        crawler = get_crawler(cls)
        spider = cls.from_crawler(crawler)
        return [r async for r in spider.start()]

    assert set(PROFILE_SPIDERS) == set(PROFILES)
    for name, cls in PROFILE_SPIDERS.items():
        requests = asyncio.run(first_requests(cls))
        assert [r.url for r in requests] == list(PROFILES[name].start_urls), name
        assert all(r.meta["govcrawl_role"] == "list" for r in requests)


# --- offline crawls -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offline_crawl_yields_exactly_the_saved_documents(crawls, name):
    procs, first, _ = crawls[name]
    assert procs[0].returncode == 0, procs[0].stderr[-3000:]
    items = {(r["kind"], r["url"], len(r["more_pages"])) for r in first if r["event"] == "item"}
    assert items == EXPECTED[name]
    responses = [r for r in first if r["event"] == "response"]
    assert any(r["url"].endswith("/robots.txt") for r in responses)
    assert all(r["status"] in (200, 404) for r in responses)


def test_offline_crawl_covers_pagination_stitching_and_attachments(crawls):
    _, wanzai, _ = crawls["wanzai"]
    assert [r["url"] for r in wanzai if r["event"] == "response" and r["role"] == "page"] == [
        "http://www.wanzai.gov.cn/wzxrmzf/tjxx/index_1.shtml"]  # 下一页
    _, atxlyj, _ = crawls["atxlyj"]
    pages = {r["url"]: r["status"] for r in atxlyj if r["event"] == "response"
             and r["role"] == "page"}
    assert pages == {"https://www.atxlyj.cn/xxgk/bmwj/index_1.html": 404}  # Pager({size:3})
    pdf = [r for r in atxlyj if r["event"] == "item" and r["kind"] == "attachment"]
    assert pdf[0]["link_text"] == "2020.1.8.pdf"
    assert pdf[0]["found_on"] == "https://www.atxlyj.cn/xxgk/ndbg/202101/t20210108_922970.html"
    _, gulou, _ = crawls["gulou"]
    [article] = [r for r in gulou if r["event"] == "item"]
    assert article["more_pages"] == [article["url"].replace(".html", "_1.html")]


def test_second_crawl_fetches_only_list_pages(crawls):
    """Same cassettes, same state dir: nothing archived again, no known document refetched, no
    paging past known documents. Links that answered 404 (documents nobody saved) are asked
    again: they were never archived."""
    for name in sorted(PROFILES):
        procs, first, second = crawls[name]
        assert procs[1].returncode == 0, procs[1].stderr[-3000:]
        assert [r for r in second if r["event"] == "item"] == [], name
        ok_before = {r["url"] for r in first if r["event"] == "response" and r["status"] == 200}
        missing_before = {r["url"] for r in first if r["event"] == "response"
                          and r["status"] == 404}
        again = [r for r in second if r["event"] == "response" and r["role"] != "list"
                 and not r["url"].endswith("/robots.txt")]
        assert {r["url"] for r in again} <= missing_before, name
        lists = {r["url"] for r in second if r["event"] == "response" and r["role"] == "list"}
        assert lists == set(PROFILES[name].start_urls), name
        if not missing_before:
            assert again == [], name
            assert len(ok_before) > len(lists) + 1, name
