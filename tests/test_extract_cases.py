"""Every labelled cleaning case (tests/cleaning-cases/cases.jsonl) through the public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.extract import classify_line, cloaking_findings, extract, spam_verdict

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "cleaning-cases" / "cases.jsonl")
    .read_text("utf-8")
    .splitlines()
    if line.strip()
]
PAGE_FLAGS = {
    "title_hijack",
    "meta_hijack",
    "js_conditional_redirect",
    "mirror_sitedomain_mismatch",
    "pinyin_gloss_scraper",
    "waf_challenge_not_content",
}


def by_kind(kind: str) -> list[dict]:
    return [c for c in CASES if c["kind"] == kind]


@pytest.mark.parametrize("case", by_kind("line"), ids=lambda c: c["id"])
def test_line(case: dict) -> None:
    assert spam_verdict(case["input"]) == case["expect"], case["note"]


@pytest.mark.parametrize("case", by_kind("boiler"), ids=lambda c: c["id"])
def test_boiler(case: dict) -> None:
    text, zone = case["input"]
    assert classify_line(text, zone) == case["expect"], case["note"]


@pytest.mark.parametrize("case", by_kind("dom"), ids=lambda c: c["id"])
def test_dom(case: dict) -> None:
    doc = extract(case["input"], "http://www.example.gov.cn/art/1.html")
    assert len(doc.spam) == case["expect"], (doc.spam, case["note"])
    for removed in doc.spam:
        assert removed not in doc.text
    # the real paragraphs stay
    assert "现将本区2022年法治政府建设工作情况报告如下" in doc.text
    assert "行政执法规范化水平仍需提升" in doc.text


@pytest.mark.parametrize("case", by_kind("page"), ids=lambda c: c["id"])
def test_page(case: dict) -> None:
    url = f"http://{case.get('host', 'www.example.gov.cn')}/art/2023/3/10/art_1.html"
    doc = extract(case["input"], url)
    assert sorted(set(doc.findings) & PAGE_FLAGS) == sorted(case["expect"]), case["note"]
    if "waf_challenge_not_content" in case["expect"]:
        assert doc.is_document is False
    else:
        assert doc.is_document is True
        assert doc.title == "关于2022年法治政府建设情况的报告"


@pytest.mark.parametrize("case", by_kind("cloak"), ids=lambda c: c["id"])
def test_cloak(case: dict) -> None:
    assert cloaking_findings(case["input"]) == case["expect"]


def test_cloak_positive() -> None:
    clean = "根据《法治政府建设与责任落实督察工作规定》要求，现将本区工作情况报告如下。"
    found = cloaking_findings(
        {"browser": clean, "baiduspider": "bt365备用网站_365bet开户官网_365heart\n" + clean}
    )
    assert found == ["cloaking:baiduspider"]


def test_every_kind_is_covered() -> None:
    assert {c["kind"] for c in CASES} <= {"line", "boiler", "dom", "page", "cloak"}
