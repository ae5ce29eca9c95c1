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
    "image.yaml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"),
    "zero-bytes.yaml": ("", "empty file"),
    "python-tag.yaml": ("interactions: !!python/object:os.system x\n",
                        "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"),
    "old-format.yaml": ("- request: {uri: 'http://a/'}\n  response: {}\n",
                        "a vcrpy cassette from before vcrpy 1.0"),
    "body-not-mapping.yaml": (
        f"interactions:\n- request: {{method: GET, uri: '{URL}', body: null, headers: {{}}}}\n"
        "  response: {status: {code: 200}, headers: {}, body: 'x'}\n",
        "interaction 1: the response needs"),
    "status-out-of-range.yaml": (
        f"interactions:\n- request: {{method: GET, uri: '{URL}', body: null, headers: {{}}}}\n"
        "  response: {status: {code: 999999}, headers: {}, body: {string: x}}\n",
        "interaction 1: the response needs"),
}


def write_bad(tmp_path: Path, name: str) -> Path:
    text, _ = BAD_CASSETTES[name]
    path = tmp_path / name
    if text is None:
        real = (CASSETTES / "ningbo.yaml").read_text(encoding="utf-8")
        text = real[: len(real) // 2] + '\n  "unterminated: [\n'
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("name", sorted(BAD_CASSETTES))
def test_load_names_file_and_problem(tmp_path, name):
    path = write_bad(tmp_path, name)
    with pytest.raises(CassetteError) as err:
        load_cassette(path)
    message = str(err.value)
    assert str(path) in message and BAD_CASSETTES[name][1] in message
    assert "\n" not in message and "Error" not in message  # words, not exception names


def test_a_directory_in_place_of_a_cassette_is_named(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(CassetteError, match=r"dir\.yaml: not a file"):
        load_cassette(tmp_path / "dir.yaml")


def test_a_real_cassette_still_loads():
    assert len(load_cassette(CASSETTES / "ningbo.yaml").data) > 0


def _one_line(proc) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("name", ["foreign.yaml", "truncated.yaml", "image.yaml",
                                  "zero-bytes.yaml", "body-not-mapping.yaml", "python-tag.yaml"])
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


@pytest.mark.parametrize("bad", ["image", "directory", "missing"])
def test_crawl_with_an_unreadable_or_missing_cassette_exits_2(govcrawl, tmp_path, bad):
    folder = tmp_path / "cassettes"
    folder.mkdir()
    if bad == "image":
        (folder / "liuzhi.yaml").write_bytes(BAD_CASSETTES["image.yaml"][0])
    elif bad == "directory":
        (folder / "liuzhi.yaml").mkdir()
    proc = govcrawl("crawl", "liuzhi", "--cassettes", str(folder), "--archive",
                    str(tmp_path / "archive"), "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc)
    assert str(folder / "liuzhi.yaml") in line
    assert {"image": "not UTF-8 text", "directory": "not a file",
            "missing": "cassette not found"}[bad] in line
    assert not (tmp_path / "archive" / "docs").exists()
