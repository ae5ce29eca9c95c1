"""``govcrawl archive ls|show|verify|flush`` on an archive made from real pages."""

from __future__ import annotations

import json

import pytest

from crawler.archive.cli import main
from crawler.archive.layout import site_part
from tests.test_archive import manifest, run, sequence


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    run(str(tmp / "arch"), tmp / "state", sequence())
    return tmp


def cli(capsys, arch, *args):
    code = main(["archive", *args, "--archive", str(arch / "arch"),
                 "--state-dir", str(arch / "state")])
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_lists_documents_by_site_and_date(capsys, arch):
    code, out, _ = cli(capsys, arch, "ls")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0
    # new + changed + near-duplicate versions; no alias, no unchanged revisit
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        [(d, "v1") for d in ("d003", "d006", "d044", "d045", "d047", "d049", "d055", "d061")]
        + [("d044", "v2")])
    code, out, _ = cli(capsys, arch, "ls", "--site", "www.wanzai.gov.cn")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["d006"]
    code, out, _ = cli(capsys, arch, "ls", "--since", "2030-01-01")
    assert out == ""
    code, out, _ = cli(capsys, arch, "ls", "--json", "--site", site_part(manifest()["049"]["site"]))
    lines = [json.loads(x) for x in out.splitlines()]
    assert {x["doc_id"] for x in lines} == {"d049", "d061"}


def test_show_by_id_and_by_url(capsys, arch):
    code, out, _ = cli(capsys, arch, "show", "d044")
    assert code == 0 and "470多万亩" in out  # the latest version
    meta = json.loads(out.split("\n\n", 1)[0])
    assert meta["version"] == 2 and meta["doc_id"] == "d044"
    code, out, _ = cli(capsys, arch, "show", "d044", "--version", "1")
    assert "460多万亩" in out
    code, out, _ = cli(capsys, arch, "show", manifest()["006"]["url"])
    assert code == 0 and json.loads(out.split("\n\n", 1)[0])["doc_id"] == "d006"
    # a duplicate URL shows its canonical document
    code, out, _ = cli(capsys, arch, "show", "http://www.wanzai.gov.cn/zwgk/tjgb/201705/copy.shtml")
    assert code == 0 and json.loads(out.split("\n\n", 1)[0])["doc_id"] == "d006"


def test_errors_are_one_line(capsys, arch):
    code, out, err = cli(capsys, arch, "show", "nope")
    assert code == 1 and err.count("\n") == 1 and "no document 'nope'" in err
    code, out, err = cli(capsys, arch, "ls", "--since", "yesterday")
    assert code == 2 and err.count("\n") == 1 and "YYYY-MM-DD" in err
    code = main(["archive", "verify", "--archive", "s3://"])
    err = capsys.readouterr().err
    assert code == 2 and "names no bucket" in err and "Traceback" not in err


def test_verify_and_flush(capsys, arch, tmp_path):
    import shutil

    code, out, _ = cli(capsys, arch, "verify")
    assert code == 0 and out.rstrip().endswith(": OK")
    copy = tmp_path / "copy"
    shutil.copytree(arch, copy)
    text = next((copy / "arch" / "docs").rglob("text"))
    text.write_bytes(text.read_bytes() + b"x")
    code, out, _ = cli(capsys, copy, "verify")
    assert code == 1 and "BAD docs/" in out and "1 BAD" in out
    code, out, _ = cli(capsys, arch, "flush")
    assert code == 0 and "flushed 0 spool entries" in out and "0 left" in out


def test_ls_shows_published_and_fetched_dates_apart(capsys, arch):
    code, out, _ = cli(capsys, arch, "ls")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and rows
    for row in rows:
        published, fetched = row[2], row[3]
        assert published == "-" or len(published) == 10
        assert len(fetched) == 10 and fetched[4] == "-"
    code, out, _ = cli(capsys, arch, "ls", "--json")
    entries = [json.loads(x) for x in out.splitlines()]
    assert all("fetched_at" in e and "published" in e for e in entries)
