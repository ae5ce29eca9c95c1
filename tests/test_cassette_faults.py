"""A corrupted or foreign cassette: exit 2 and one line naming the file and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crawler.cassette import CassetteError, load_cassette

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
URL = "http://www.ningbo.gov.cn/art/2023/3/31/art_1229116967_59432101.html"

#: Damaged or foreign files, each with words the error line must use instead of vcrpy's internals.
BAD_CASSETTES = {
    "foreign.yaml": ("site: ningbo\nurls: []\n", "no 'interactions' key"),
    "scalar.yaml": ('interactions: "x"\n', "not request/response mappings"),
    "empty-request.yaml": ("interactions:\n- request: {}\n  response: {}\n",
                           "not request/response mappings"),
    "binary.yaml": ("\x00\x01binary: [\n", "invalid YAML"),
    "truncated.yaml": (None, "invalid YAML"),  # the real ningbo cassette cut in half
}


def write_bad(tmp_path: Path, name: str) -> Path:
    text, _ = BAD_CASSETTES[name]
    path = tmp_path / name
    if text is None:
        real = (CASSETTES / "ningbo.yaml").read_text(encoding="utf-8")
        text = real[: len(real) // 2] + '\n  "unterminated: [\n'
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(BAD_CASSETTES))
def test_load_names_file_and_problem(tmp_path, name):
    path = write_bad(tmp_path, name)
    with pytest.raises(CassetteError) as err:
        load_cassette(path)
    message = str(err.value)
    assert str(path) in message and BAD_CASSETTES[name][1] in message
    assert "\n" not in message


def test_a_real_cassette_still_loads():
    assert len(load_cassette(CASSETTES / "ningbo.yaml").data) > 0


def _one_line(proc) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("name", ["foreign.yaml", "truncated.yaml"])
def test_fetch_with_a_bad_cassette_exits_2(govcrawl, tmp_path, name):
    path = write_bad(tmp_path, name)
    proc = govcrawl("fetch", URL, "--cassette", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc)
    assert str(path) in line and BAD_CASSETTES[name][1] in line


def test_crawl_with_a_bad_cassette_exits_2_before_crawling(govcrawl, tmp_path):
    folder = tmp_path / "cassettes"
    folder.mkdir()
    shutil.copy(CASSETTES / "liuzhi.yaml", folder)
    (folder / "ningbo.yaml").write_text('interactions: "x"\n', encoding="utf-8")
    proc = govcrawl("crawl", "liuzhi", "ningbo", "--cassettes", str(folder), "--archive",
                    str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "ningbo.yaml" in _one_line(proc)
    assert not (tmp_path / "archive" / "docs").exists()
