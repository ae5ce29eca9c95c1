"""An archive made the way a user makes one: ``govcrawl crawl --all --cassettes cassettes/``, then a
second crawl of liuzhi from a copy of its cassette whose article was edited (a figure corrected and
a line added whose *text* is ``<script>alert(1)</script>``, as a hostile page could show), so the
article has two versions. Built once per test session; import the ``crawled`` fixture.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import CASSETTES, run_govcrawl

LIUZHI_URL = "http://www.liuzhi.gov.cn/zwgk/zdlygk/fzzfjs/202303/t20230328_78512345.html"
LIUZHI_TITLE = "六枝特区人民政府关于2022年度法治政府建设工作情况的报告"
#: a phrase of the liuzhi article's body (in both versions)
BODY_PHRASE = "按属地原则划分18个网格区域"
OLD_FIGURE, NEW_FIGURE = "2022年办件达246827件", "2022年办件达246830件"
HOSTILE_LINE = "<script>alert(1)</script>网站维护说明：本文数据已于次年更正。"
LAST_PARAGRAPH_END = "更好服务法治政府建设。</p>"
ATXLYJ_PDF_URL = "https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108586100144513.pdf"


@dataclass
class Crawled:
    root: Path
    archive: Path
    state: Path

    def args(self) -> list[str]:
        return ["--archive", str(self.archive), "--state-dir", str(self.state)]


def edited_liuzhi_cassette(target_dir: Path) -> Path:
    """liuzhi's cassette with its article edited (see the module docstring)."""
    data = yaml.safe_load((CASSETTES / "liuzhi.yaml").read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        if interaction["request"]["uri"] == LIUZHI_URL:
            body = interaction["response"]["body"]["string"]
            assert OLD_FIGURE in body and LAST_PARAGRAPH_END in body
            hostile = HOSTILE_LINE.replace("<", "&lt;").replace(">", "&gt;")
            body = body.replace(OLD_FIGURE, NEW_FIGURE).replace(
                LAST_PARAGRAPH_END, f"{LAST_PARAGRAPH_END}\n<p>{hostile}</p>", 1)
            interaction["response"]["body"]["string"] = body
            interaction["response"]["headers"].pop("Content-Length", None)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / "liuzhi.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


_BUILT: dict[str, Crawled] = {}


def build(root: Path) -> Crawled:
    crawled = Crawled(root, root / "archive", root / "state")
    run_govcrawl("crawl", "--all", "--cassettes", str(CASSETTES), *crawled.args(), cwd=root,
                 check=True)
    edited = edited_liuzhi_cassette(root / "cassettes-v2")
    run_govcrawl("crawl", "liuzhi", "--cassettes", str(edited.parent), *crawled.args(),
                 "-s", "GOVCRAWL_INCREMENTAL=false", cwd=root, check=True)
    return crawled


@pytest.fixture(scope="session")
def crawled(tmp_path_factory) -> Crawled:
    if "archive" not in _BUILT:
        _BUILT["archive"] = build(tmp_path_factory.mktemp("crawled"))
    return _BUILT["archive"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
