"""Storage failures: the S3 server stops mid-crawl, items are spooled, nothing is lost, and a
flush (automatic when the store answers again, or explicit) uploads each item exactly once."""

from __future__ import annotations

import json

from crawler.archive import ArchiveWriter, open_archive
from crawler.archive.layout import site_part
from tests.s3server import s3_env, s3_server_private  # noqa: F401
from tests.test_archive import CRAWL, s3_opts, sequence


def writer_for(uri, state, server, probe_interval=0.0):
    archive = open_archive(uri, connect_timeout=1, read_timeout=5,
                           **s3_opts(server))
    w = ArchiveWriter(archive, state, CRAWL, probe_interval=probe_interval)
    w.open()
    return w


def doc_keys(keys):
    return sorted(k for k in keys if "/docs/" in f"/{k}")


def test_server_stops_mid_sequence_then_flush(s3_server_private, tmp_path):  # noqa: F811
    server = s3_server_private
    bucket = server.create_bucket()
    uri = f"s3://{bucket}/arch/"
    items = sequence()
    writer = writer_for(uri, tmp_path / "state", server, probe_interval=3600)
    for item in items[:4]:
        writer.write(item)
    assert not any(i.archived["spooled"] for i in items[:4])
    server.stop()  # storage goes away mid-crawl
    for item in items[4:]:
        writer.write(item)  # processing finishes: nothing raises
    summary = writer.close()
    assert all(i.archived["spooled"] for i in items[4:])
    spool = writer.spool
    # the rest of the items, the WARC segment and the manifest wait in the spool
    assert summary["spool_entries"] == len(items) - 4 + 2 == len(spool.ids())
    assert summary["store_errors"] >= 1

    server.start()  # a fresh server on the same port; moto keeps the bucket in-process
    before = server.keys(bucket)
    assert len(doc_keys(before)) == 2 * 4  # text + meta of the first four
    flusher = writer_for(uri, tmp_path / "state", server)  # next run: open() flushes
    assert flusher.stats["flushed"] == summary["spool_entries"]
    flusher.close()
    assert spool.ids() == []

    # every item in S3 exactly once, verify passes
    keys = [k.removeprefix("arch/") for k in server.keys(bucket)]
    archive = open_archive(uri, **s3_opts(server))
    lines = archive.manifest(CRAWL)
    per_item = [x for x in lines if x["kind"] != "warc"]
    assert len(per_item) == len(items)
    assert sorted(x["url"] for x in per_item) == sorted(
        i.response.requested_url or i.url for i in items)
    assert sum(1 for x in lines if x["kind"] == "warc") == 1
    wanzai = site_part("www.wanzai.gov.cn")
    assert [k for k in keys if f"docs/{wanzai}/d006/" in k] == [
        f"docs/{wanzai}/d006/v1/meta.json", f"docs/{wanzai}/d006/v1/text"]
    report = archive.verify()
    assert report.ok and report.checked >= 20


def test_store_returns_during_the_crawl(s3_server_private, tmp_path):  # noqa: F811
    """A later item finds the store answering again and flushes the spool before its own write."""
    server = s3_server_private
    bucket = server.create_bucket()
    uri = f"s3://{bucket}/arch/"
    items = sequence()
    writer = writer_for(uri, tmp_path / "state", server, probe_interval=0)
    writer.write(items[0])
    server.stop()
    writer.write(items[1])
    writer.write(items[2])
    assert len(writer.spool.ids()) == 2
    server.start()
    writer.write(items[3])  # probes, flushes the two spooled items, then writes
    assert writer.spool.ids() == [] and writer.stats["flushed"] == 2
    assert not items[3].archived["spooled"]
    writer.close()
    archive = open_archive(uri, **s3_opts(server))
    assert len([x for x in archive.manifest(CRAWL) if x["kind"] != "warc"]) == 4
    assert archive.verify().ok


def test_crash_leftovers_are_recovered(tmp_path):
    """A writer that died without close(): the next run uploads its WARC and manifest lines."""
    uri = str(tmp_path / "arch")
    items = sequence()[:3]
    dead = ArchiveWriter(open_archive(uri), tmp_path / "state", CRAWL)
    dead.open()
    for item in items:
        dead.write(item)
    dead.workdir.release()  # the process is gone: its lock is released, nothing was closed
    dead.warc.close()
    nxt = ArchiveWriter(open_archive(uri), tmp_path / "state", "next-crawl")
    nxt.open()
    nxt.close()
    archive = open_archive(uri)
    lines = archive.manifest(CRAWL)
    assert len([x for x in lines if x["kind"] != "warc"]) == 3
    warc = [x for x in lines if x["kind"] == "warc"]
    assert len(warc) == 1 and warc[0]["recovered"]
    assert archive.verify().ok
    assert not any((tmp_path / "state" / "archive-work").iterdir())


def test_crawl_report_is_spooled_when_the_store_is_down(s3_server_private, tmp_path):  # noqa: F811
    server = s3_server_private
    bucket = server.create_bucket()
    uri = f"s3://{bucket}/arch/"
    archive = open_archive(uri, spool_dir=tmp_path / "spool", connect_timeout=1,
                           **s3_opts(server))
    server.stop()
    key = archive.write_crawl_report(CRAWL, {"crawl_id": CRAWL, "pages_fetched": 3})
    assert key == f"crawls/{CRAWL}/report.json"
    server.start()
    w = ArchiveWriter(open_archive(uri, **s3_opts(server)), tmp_path, "later")
    w.open()
    w.close()
    assert json.loads(open_archive(uri, **s3_opts(server)).get(key))["pages_fetched"] == 3


def test_local_store_failure_and_damaged_spool_entry(tmp_path):
    """A directory that cannot be written spools too; a spool entry damaged on disk is never
    uploaded: it is moved to the quarantine and its dedup verdict is handed back to be undone
    (so the next crawl fetches the document again); the others go through."""
    blocker = tmp_path / "arch"
    blocker.write_text("a file where the archive directory should be")
    uri = str(blocker / "sub")
    writer = ArchiveWriter(open_archive(uri), tmp_path / "state", CRAWL,
                           probe_interval=3600)
    writer.open()
    items = sequence()[:2]
    for item in items:
        writer.write(item)
    writer.close()
    ids = writer.spool.ids()
    assert len(ids) == 3  # two items + the WARC segment
    blob = writer.spool.dir / ids[0] / "blob-0"  # the first item's text
    blob.write_bytes(blob.read_bytes() + "篡改".encode())
    blocker.unlink()
    later = ArchiveWriter(open_archive(uri), tmp_path / "state", "next")
    later.open()
    later.close()
    assert writer.spool.ids() == [] and writer.spool.quarantined() == [ids[0]]
    assert "no longer matches" in (writer.spool.dir / "quarantine" / ids[0] / "reason.txt"
                                   ).read_text()
    forgotten = later.take_forgotten()
    assert [f["doc_id"] for f in forgotten] == [items[0].dedup.doc_id]
    assert later.stats["quarantined"] == 1 and later.stats["flushed"] == 2
    archive = open_archive(uri)
    assert archive.verify().ok
    assert not any("d003" in k for k in archive.store.list())


def test_recovery_without_journal_and_racing_sweepers(tmp_path, caplog):
    """A work directory without a journal (a writer killed before its first line) is recovered
    (its WARC spooled); a sweeper that finds a directory another sweeper just recovered skips
    it quietly (``crawl --all`` starts many writers at once)."""
    from crawler.archive.outbox import _recover_dir, recover_orphans
    from crawler.archive.spool import Spool

    dead = ArchiveWriter(open_archive(str(tmp_path / "arch")), tmp_path / "state", CRAWL)
    dead.open()
    dead.write(sequence()[0])
    dead.workdir.release()
    dead.warc.close()
    (dead.work / "journal.jsonl").unlink()
    spool = Spool(tmp_path / "state" / "spool")
    base = tmp_path / "state" / "archive-work"
    with caplog.at_level("WARNING"):
        assert recover_orphans(base, spool) == 1
        assert _recover_dir(base, dead.work, spool) == 0  # gone: recovered by the sweep above
    assert not any("could not recover" in r.message for r in caplog.records)
    assert [spool.load(e).entry["kind"] for e in spool.ids()] == ["warc"]
