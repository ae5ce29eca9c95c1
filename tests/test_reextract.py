"""``govcrawl reextract``: an archive made before a change to the extractor gets new versions
exactly for the documents whose text the change alters, without fetching anything."""

from __future__ import annotations

import json
import re
import shutil
import sys
import unicodedata
from pathlib import Path

import pytest

from crawler.cli import main
from crawler.extract import classify_line, lexicon
from tests.conftest import CASSETTES, run_govcrawl

SITES = ("wanzai", "gzdzhrss", "atxlyj")


def clear_extraction_caches() -> None:
    """Lexicons and the patterns compiled from them are cached per process."""
    for name, module in list(sys.modules.items()):
        if name.startswith("crawler.extract") and module is not None:
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reextract")
    run_govcrawl("crawl", *SITES, "--cassettes", str(CASSETTES), "--archive",
                 str(tmp / "work" / "archive"), "--state-dir", str(tmp / "work" / "state"),
                 cwd=tmp, check=True)
    shutil.copytree(tmp / "work", tmp / "pristine")
    return tmp


@pytest.fixture
def work(pristine: Path) -> Path:
    """The crawl's archive and state, as the crawl left them (the state is bound to the
    archive's path, so each test gets them back in place)."""
    yield pristine / "work"
    shutil.rmtree(pristine / "work")
    shutil.copytree(pristine / "pristine", pristine / "work")


def versions(archive: Path) -> dict[str, list[str]]:
    """doc_id -> its version directories' texts, oldest first."""
    out: dict[str, list[str]] = {}
    for doc in sorted(archive.glob("docs/*/*")):
        vs = sorted(doc.glob("v*"), key=lambda p: int(p.name[1:]))
        out[doc.name] = [(v / "text").read_text("utf-8") for v in vs]
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_unchanged_extractor_writes_nothing(work: Path, capsys):
    before = snapshot(work / "archive")
    code = main(["reextract", "--archive", str(work / "archive"), "--state-dir",
                 str(work / "state")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 changed" in out and "unchanged" in out
    assert snapshot(work / "archive") == before


def test_lexicon_change_makes_new_versions_only_where_text_changed(work: Path, tmp_path: Path,
                                                                   monkeypatch, capsys):
    archive = work / "archive"
    before = versions(archive)
    assert len(before) >= 5 and all(len(v) == 1 for v in before.values())
    # a line of a document becomes boilerplate, as a lexicon fix would make it (the first line,
    # from the end of a document, that the patched lexicon does label: guards protect others)
    lexicons = tmp_path / "lexicons"
    shutil.copytree(lexicon.LEXICON_DIR, lexicons)
    original = (lexicons / "boilerplate.yaml").read_text("utf-8")
    monkeypatch.setattr(lexicon, "LEXICON_DIR", lexicons)
    candidates = [(d, line) for d in sorted(before)
                  for line in reversed(before[d][0].splitlines()[-5:]) if 4 < len(line) < 60]
    for candidate in candidates:
        target, line = candidate
        norm = unicodedata.normalize("NFKC", line).lower()
        (lexicons / "boilerplate.yaml").write_text(original.replace(
            "control_lines:\n", f"control_lines:\n  - '^{re.escape(norm)}$'\n", 1), "utf-8")
        clear_extraction_caches()
        if classify_line(line) == "controls":
            break
    else:
        pytest.fail("no line the patched lexicon labels")
    touched = {d for d, (text,) in before.items() if line in text.splitlines()}
    try:
        code = main(["reextract", "--archive", str(archive), "--state-dir", str(work / "state")])
    finally:
        monkeypatch.undo()
        clear_extraction_caches()
    out = capsys.readouterr().out
    assert code == 0, out
    after = versions(archive)
    changed = {d for d in after if len(after[d]) > 1}
    assert changed == touched and target in changed
    assert f"documents: {len(touched)} changed" in out
    for doc_id in changed:
        old, new = after[doc_id]
        assert old == before[doc_id][0]  # the old version is kept as it was
        assert line not in new.splitlines() and new != old
    for doc_id in set(after) - changed:
        assert after[doc_id] == before[doc_id]
    # the new versions point at the raw responses already archived (nothing was fetched)
    [new_meta] = [json.loads(p.read_text("utf-8")) for p in archive.glob(f"docs/*/{target}/v2/"
                                                                            "meta.json")]
    [old_meta] = [json.loads(p.read_text("utf-8")) for p in archive.glob(f"docs/*/{target}/v1/"
                                                                            "meta.json")]
    assert [p["warc"] for p in new_meta["pages"]] == [p["warc"] for p in old_meta["pages"]]
    assert new_meta["dedup"]["outcome"] == "changed" and new_meta["version"] == 2
    assert new_meta["crawl_id"].endswith("-reextract")
    assert not list(archive.glob(f"crawls/{new_meta['crawl_id']}/warc/*"))  # no WARC written
    # its attachments keep the sha256 and key of their stored bodies
    assert new_meta["attachments"] == old_meta["attachments"]
    verify = run_govcrawl("archive", "verify", "--archive", str(archive), "--state-dir",
                          str(work / "state"))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # run again: the state knows the new texts, so nothing more is written
    monkeypatch.setattr(lexicon, "LEXICON_DIR", lexicons)
    clear_extraction_caches()
    try:
        assert main(["reextract", "--archive", str(archive), "--state-dir",
                     str(work / "state")]) == 0
    finally:
        monkeypatch.undo()
        clear_extraction_caches()
    assert versions(archive) == after


def test_attachment_text_change_is_rewritten_and_verifies(work: Path, capsys):
    archive = work / "archive"
    [text_path] = archive.glob("attachments/*/*/text")
    text_path.write_text("an older reader's text", "utf-8")  # as an older extractor left it
    code = main(["reextract", "--site", "atxlyj", "--archive", str(archive), "--state-dir",
                 str(work / "state")])
    out = capsys.readouterr().out
    assert code == 0 and "attachments: 1 text changed" in out
    assert text_path.read_text("utf-8") == "2020.1.8"
    verify = run_govcrawl("archive", "verify", "--archive", str(archive), "--state-dir",
                          str(work / "state"))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bad_since_is_usage_error(tmp_path: Path, capsys):
    assert main(["reextract", "--since", "last week", "--archive", str(tmp_path / "a"),
                 "--state-dir", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
