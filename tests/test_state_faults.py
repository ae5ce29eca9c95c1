"""The dedup state belongs to its archive: mismatched, empty or corrupted states are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"


def crawl(govcrawl, archive: Path, state: Path, cwd: Path, *sites: str):
    return govcrawl("crawl", *(sites or ("liuzhi", "ningbo")), "--cassettes", str(CASSETTES),
                    "--archive", str(archive), "--state-dir", str(state), cwd=cwd)


def one_line(proc) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def documents(archive: Path) -> set[str]:
    return {json.loads(p.read_text())["url"] for p in (archive / "docs").rglob("meta.json")}


def test_a_state_used_with_another_archive_is_refused(govcrawl, tmp_path):
    state = tmp_path / "state"
    first = crawl(govcrawl, tmp_path / "a", state, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(documents(tmp_path / "a")) == 2
    proc = crawl(govcrawl, tmp_path / "b", state, tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "belongs to archive" in line and str(tmp_path / "a") in line
    assert not (tmp_path / "b" / "docs").exists()
    # its own state dir: B gets every document
    own = crawl(govcrawl, tmp_path / "b", tmp_path / "state-b", tmp_path)
    assert own.returncode == 0 and documents(tmp_path / "b") == documents(tmp_path / "a")


def test_corrupted_state_names_the_file_and_the_rebuild_command(govcrawl, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "dedup.sqlite").write_bytes(bytes(range(256)) * 64)
    proc = crawl(govcrawl, tmp_path / "a", state, tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert str(state / "dedup.sqlite") in line and "govcrawl archive rebuild-state" in line


def test_empty_state_beside_an_archive_is_refused_then_rebuilt(govcrawl, tmp_path):
    archive, state = tmp_path / "a", tmp_path / "state"
    assert crawl(govcrawl, archive, state, tmp_path).returncode == 0
    before = documents(archive)
    db = state / "dedup.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"")  # a zero-byte state file
    proc = crawl(govcrawl, archive, state, tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "rebuild-state" in line and str(db) in line

    rebuilt = govcrawl("archive", "rebuild-state", "--archive", str(archive), "--state-dir",
                       str(state), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 documents" in rebuilt.stdout
    again = crawl(govcrawl, archive, state, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert documents(archive) == before
    assert not list((archive / "docs").rglob("v2"))  # nothing rewritten as a new version
    verify = govcrawl("archive", "verify", "--archive", str(archive), cwd=tmp_path)
    assert verify.returncode == 0 and "BAD" not in verify.stdout, verify.stdout[-2000:]


def test_an_archive_emptied_at_the_same_path_is_refused(govcrawl, tmp_path):
    """The state keeps the archive's id (archive.json): the same path holding another (here:
    an emptied) archive is not taken for the one the state knows, which would skip every
    known document and leave the archive empty with exit 0."""
    archive, state = tmp_path / "a", tmp_path / "state"
    assert crawl(govcrawl, archive, state, tmp_path).returncode == 0
    before = documents(archive)
    shutil.rmtree(archive)
    proc = crawl(govcrawl, archive, state, tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "no archive id" in line and "govcrawl archive rebuild-state" in line
    assert not (archive / "docs").exists()
    rebuilt = govcrawl("archive", "rebuild-state", "--archive", str(archive), "--state-dir",
                       str(state), cwd=tmp_path)
    assert rebuilt.returncode == 0 and "0 documents" in rebuilt.stdout, rebuilt.stderr
    again = crawl(govcrawl, archive, state, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert documents(archive) == before


def test_verify_fails_on_a_document_the_state_knows_but_the_archive_lacks(govcrawl, tmp_path):
    """Completeness: a document version the dedup state knows must be in the archive, even when
    no manifest line names it (a crawl killed before its manifest was written)."""
    archive, state = tmp_path / "a", tmp_path / "state"
    assert crawl(govcrawl, archive, state, tmp_path).returncode == 0
    verify = ["archive", "verify", "--archive", str(archive), "--state-dir", str(state)]
    assert govcrawl(*verify, cwd=tmp_path).returncode == 0
    meta = sorted((archive / "docs").rglob("meta.json"))[0]
    url, doc_id = (json.loads(meta.read_text())[k] for k in ("url", "doc_id"))
    shutil.rmtree(meta.parent.parent)
    for manifest in (archive / "crawls").rglob("manifest.jsonl"):
        lines = manifest.read_text("utf-8").splitlines(keepends=True)
        manifest.write_text("".join(x for x in lines if doc_id not in x), "utf-8")
    proc = govcrawl(*verify, cwd=tmp_path)
    assert proc.returncode == 1
    bad = [line for line in proc.stdout.splitlines() if line.startswith("BAD")]
    assert len(bad) == 1 and doc_id in bad[0] and url in bad[0], proc.stdout
