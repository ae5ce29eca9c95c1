"""The dedup state belongs to its archive: mismatched, empty or corrupted states are refused."""

from __future__ import annotations

import json
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
    assert "rebuild-state" in one_line(proc)

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
