"""Archive: same keys and bytes on file:// and s3://, WARC read back, per-outcome behaviour,
attachments stored once, idempotent re-runs, verification, URI validation, path traversal."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.archive import (
    ArchiveConfigError,
    ArchiveWriter,
    StoreError,
    open_archive,
)
from crawler.archive.layout import UnsafeKeyError, check_key, site_part
from crawler.archive.stores import LocalStore
from crawler.items import (
    ARTICLE,
    ATTACHMENT,
    CHANGED,
    DUPLICATE,
    NEAR_DUPLICATE,
    NEW,
    UNCHANGED,
    DedupResult,
    Document,
    PageItem,
    ResponseRecord,
)
from tests.s3server import s3_bucket, s3_env, s3_server  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
CRAWL = "20240601T000000Z-test"
SAFE_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")

# A minimal, valid one-page PDF (the archive stores attachment bytes as they are).
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def manifest() -> dict[str, dict]:
    rows = [json.loads(x) for x in (CORPUS / "manifest.jsonl").read_text("utf-8").splitlines()]
    return {r["id"]: r for r in rows}


def page_text(body: bytes, url: str, content_type: str | None) -> Document:
    """Extraction output for a page: the project's extractor if it works, else plain page text."""
    try:
        from crawler.extract import extract

        return extract(body, url, {"Content-Type": content_type} if content_type else None)
    except Exception:  # extractor not ready yet: visible text of <body> is enough here
        import lxml.html

        text = body.decode("utf-8", "replace")
        tree = lxml.html.fromstring(text)
        for bad in tree.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        title = (tree.findtext(".//title") or "").strip() or None
        lines = [" ".join(s.split()) for s in tree.text_content().splitlines()]
        return Document(url=url, title=title, text="\n".join(x for x in lines if x))


def record(page_id: str, *, url: str | None = None, body: bytes | None = None,
           fetched_at: str = "2024-06-01T08:00:00Z") -> ResponseRecord:
    row = manifest()[page_id]
    url = url or row["url"] or f"http://{row['site']}/page-{page_id}.html"
    body = body if body is not None else (CORPUS / "pages" / f"{page_id}.html").read_bytes()
    ctype = f"text/html; charset={row['charset'] or 'utf-8'}"
    return ResponseRecord(
        url=url, status=200, body=body, fetched_at=fetched_at,
        headers=[("Content-Type", ctype), ("Content-Length", str(len(body))),
                 ("Last-Modified", "Sat, 01 Jun 2024 07:00:00 GMT"), ("Set-Cookie", "sid=1")],
        request_headers=[("User-Agent", "govcrawl-test"), ("Accept", "text/html")],
    )


def article(page_id: str, outcome: str, doc_id: str, version: int = 1, *,
            site: str | None = None, canonical: str | None = None, **rec_kw) -> PageItem:
    rec = record(page_id, **rec_kw)
    doc = page_text(rec.body, rec.url, rec.header("Content-Type"))
    text_hash = hashlib.sha256(" ".join(doc.text.split()).encode()).hexdigest()
    dedup = DedupResult(outcome=outcome, doc_id=doc_id, version=version, text_hash=text_hash,
                        canonical_id=canonical, similarity=0.9 if canonical else None,
                        urls=[rec.url])
    return PageItem(site=site or manifest()[page_id]["site"], kind=ARTICLE, response=rec,
                    crawl_id=CRAWL, document=doc, dedup=dedup)


def attachment(url: str, found_on: str, name: str) -> PageItem:
    rec = ResponseRecord(url=url, status=200, body=PDF, fetched_at="2024-06-01T08:00:05Z",
                         headers=[("Content-Type", "application/pdf")])
    return PageItem(site="www.atxlyj.cn", kind=ATTACHMENT, response=rec, crawl_id=CRAWL,
                    found_on=found_on, link_text=name)


def sequence() -> list[PageItem]:
    """Real pages through every dedup outcome, a multi-page article and one PDF found twice."""
    m = manifest()
    changed = (CORPUS / "pages" / "044.html").read_bytes().replace(  # a figure corrected
        "绿化造林460多万亩".encode(), "绿化造林470多万亩".encode())
    items = [
        article("003", NEW, "d003"),
        article("006", NEW, "d006"),
        article("044", NEW, "d044"),
        article("049", NEW, "d049"),
        attachment("https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108586100144513.pdf",
                   m["049"]["url"], "2020年政府信息公开工作年度报告"),
        # the same text at a second URL -> only an alias
        article("006", DUPLICATE, "d006b", canonical="d006",
                url="http://www.wanzai.gov.cn/zwgk/tjgb/201705/copy.shtml"),
        article("044", CHANGED, "d044", version=2, body=changed,
                fetched_at="2024-06-01T09:00:00Z"),
        article("045", NEAR_DUPLICATE, "d045", canonical="d044"),
        article("003", UNCHANGED, "d003", fetched_at="2024-06-01T10:00:00Z"),
        # the same PDF linked from another page: body stored once, a second ref
        attachment("https://www.atxlyj.cn/xxgk/ndbg/P020210108586100144513.pdf",
                   "https://www.atxlyj.cn/xxgk/ndbg/index.html", "年度报告（PDF）"),
        article("055", NEW, "d055"),
        article("061", NEW, "d061"),
    ]
    multi = article("047", NEW, "d047")
    multi.more_pages = [record("012", url=multi.url.replace("c.html", "c_2.html"))]
    items.append(multi)
    return items


def run(uri: str, state: Path, items: list[PageItem], **opts) -> ArchiveWriter:
    writer = ArchiveWriter(open_archive(uri, **opts), state, CRAWL,
                           probe_interval=0)
    writer.open()
    for item in items:
        writer.write(item)
    writer.close()
    return writer


def snapshot(uri: str, **opts) -> dict[str, bytes]:
    archive = open_archive(uri, **opts)
    return {k: archive.get(k) for k in archive.store.list()}


def s3_opts(server) -> dict:
    return {"endpoint_url": server.endpoint_url, "region_name": "us-east-1", "max_attempts": 1}


# --- the main sequence --------------------------------------------------------------------


@pytest.fixture(scope="module")
def archived(tmp_path_factory, s3_server):  # noqa: F811
    """The sequence archived once to a directory and once to S3."""
    tmp = tmp_path_factory.mktemp("archive")
    bucket = s3_server.create_bucket()
    local_items, s3_items = sequence(), sequence()
    local = run((tmp / "arch").as_uri(), tmp / "state-local", local_items)
    s3_uri = f"s3://{bucket}/gov/archive"  # no trailing slash: normalised to a folder
    remote = run(s3_uri, tmp / "state-s3", s3_items, **s3_opts(s3_server))
    return {
        "local": snapshot((tmp / "arch").as_uri()),
        "s3": snapshot(s3_uri, **s3_opts(s3_server)),
        "raw_s3_keys": s3_server.keys(bucket),
        "local_items": local_items, "s3_items": s3_items,
        "writers": (local, remote), "tmp": tmp, "bucket": bucket, "s3_uri": s3_uri,
    }


def test_same_keys_and_bytes_on_file_and_s3(archived):
    local, s3 = archived["local"], archived["s3"]
    assert local and sorted(local) == sorted(s3)
    for key in local:
        assert local[key] == s3[key], key
    # the S3 prefix got a trailing slash: keys sit under gov/archive/, not gov/archivedocs/...
    assert all(k.startswith("gov/archive/") for k in archived["raw_s3_keys"])
    assert all(SAFE_KEY.match(k) for k in local)


def test_outcomes_shape_the_layout(archived):
    keys = set(archived["local"])
    docs = {k for k in keys if k.startswith("docs/")}
    site = site_part("www.gov.cn")  # plain host names stay readable
    assert site == "www.gov.cn"
    wanzai, people = site_part("www.wanzai.gov.cn"), site_part("finance.people.com.cn")
    # new -> v1 text + meta
    assert f"docs/{wanzai}/d006/v1/text" in docs and f"docs/{wanzai}/d006/v1/meta.json" in docs
    # duplicate -> an alias only, no second copy of the text
    assert not any("/d006b/" in k for k in docs)
    aliases = [k for k in keys if k.startswith("aliases/")]
    assert len(aliases) == 1
    alias = json.loads(archived["local"][aliases[0]])
    assert alias["canonical_id"] == "d006"
    assert alias["url"] == "http://www.wanzai.gov.cn/zwgk/tjgb/201705/copy.shtml"
    # changed -> v2 beside v1, v1 untouched
    v1 = archived["local"][f"docs/{people}/d044/v1/text"].decode()
    v2 = archived["local"][f"docs/{people}/d044/v2/text"].decode()
    assert "470多万亩" in v2 and "460多万亩" in v1 and "470多万亩" not in v1
    # near duplicate -> written, linked to its canonical doc
    near_site = site_part("health.people.com.cn")
    meta = json.loads(archived["local"][f"docs/{near_site}/d045/v1/meta.json"])
    assert meta["canonical_id"] == "d044" and meta["dedup"]["outcome"] == NEAR_DUPLICATE
    # unchanged -> no document objects beyond v1
    zj = site_part("fgw.zj.gov.cn (zjdpc.gov.cn)")
    assert sorted(k for k in docs if "/d003/" in k) == [f"docs/{zj}/d003/v1/meta.json",
                                                        f"docs/{zj}/d003/v1/text"]
    # meta.json carries what archivists need
    meta = json.loads(archived["local"][f"docs/{wanzai}/d006/v1/meta.json"])
    assert meta["url"] == manifest()["006"]["url"] and meta["crawl_id"] == CRAWL
    assert meta["hashes"]["text_sha256"] == hashlib.sha256(
        archived["local"][f"docs/{wanzai}/d006/v1/text"]).hexdigest()
    assert meta["http"]["status"] == 200
    assert (meta["published"], meta["published_from"]) == ("2017-05-15", "page")
    assert meta["http"]["headers"]["last-modified"].startswith("Sat")
    assert "set-cookie" not in meta["http"]["headers"]
    assert meta["pages"][0]["warc"]["key"].startswith(f"crawls/{CRAWL}/warc/")


def test_text_is_clean_utf8(archived):
    for key, data in archived["local"].items():
        if key.endswith("/text"):
            text = data.decode("utf-8")  # raises if not UTF-8
            assert "<script" not in text


def test_attachment_stored_once_with_two_refs(archived):
    keys = archived["local"]
    sha = hashlib.sha256(PDF).hexdigest()
    bodies = [k for k in keys if k.startswith("attachments/") and k.endswith("/body")]
    assert bodies == [f"attachments/{sha[:2]}/{sha}/body"]
    assert keys[bodies[0]] == PDF
    refs = [json.loads(keys[k]) for k in keys if "/refs/" in k]
    assert sorted(r["name"] for r in refs) == ["2020年政府信息公开工作年度报告", "年度报告（PDF）"]
    assert {r["content_type"] for r in refs} == {"application/pdf"}
    assert all(r["found_on"] for r in refs)


def test_warc_reads_back_with_warcio(archived):
    keys = archived["local"]
    warcs = [k for k in keys if k.endswith(".warc.gz")]
    assert len(warcs) == 1
    records = []
    for rec in ArchiveIterator(io.BytesIO(keys[warcs[0]])):
        uri = rec.rec_headers.get_header("WARC-Target-URI")
        body = rec.content_stream().read()
        records.append((rec.rec_type, uri, body))
    types = [t for t, _, _ in records]
    assert types[0] == "warcinfo"
    # 13 items, one with two pages, one unchanged (revisit): 13 responses + 13 requests + 1 revisit
    assert types.count("response") == 13 and types.count("request") == 13
    assert types.count("revisit") == 1
    page = (CORPUS / "pages" / "006.html").read_bytes()
    assert ("response", manifest()["006"]["url"], page) in records
    assert ("response", "https://www.atxlyj.cn/xxgk/ndbg/P020210108586100144513.pdf",
            PDF) in records
    # the offset recorded in meta.json points at the response record
    wanzai = site_part("www.wanzai.gov.cn")
    loc = json.loads(keys[f"docs/{wanzai}/d006/v1/meta.json"])["pages"][0]["warc"]
    it = ArchiveIterator(io.BytesIO(keys[warcs[0]][loc["offset"]:]))
    first = next(iter(it))
    assert first.rec_type == "response" and first.content_stream().read() == page


def test_manifest_and_item_archived(archived):
    keys = archived["local"]
    lines = [json.loads(x) for x in keys[f"crawls/{CRAWL}/manifest.jsonl"].decode().splitlines()]
    items = [x for x in lines if x["kind"] != "warc"]
    assert len(items) == 13
    assert sum(1 for x in lines if x["kind"] == "warc") == 1
    for line in lines:
        for obj in line["objects"]:
            assert hashlib.sha256(keys[obj["key"]]).hexdigest() == obj["sha256"]
    outcomes = sorted(x["outcome"] for x in items)
    assert outcomes.count(UNCHANGED) == 1 and outcomes.count(DUPLICATE) == 1
    for item in archived["s3_items"]:
        assert item.archived is not None and not item.archived["spooled"]
    dup = archived["s3_items"][5]
    assert len(dup.archived["keys"]) == 1 and dup.archived["keys"][0].startswith("aliases/")
    unchanged = archived["s3_items"][8]
    assert unchanged.archived["keys"] == [] and unchanged.archived["objects"] == 0
    local_w, s3_w = archived["writers"]
    assert local_w.stats["objects"] == s3_w.stats["objects"] == len(keys)
    assert local_w.stats["bytes"] == sum(len(v) for v in keys.values())


def test_rerun_is_idempotent(archived, s3_server):  # noqa: F811
    tmp = archived["tmp"]
    before = snapshot(archived["s3_uri"], **s3_opts(s3_server))
    again = run(archived["s3_uri"], tmp / "state-s3-again", sequence(), **s3_opts(s3_server))
    after = snapshot(archived["s3_uri"], **s3_opts(s3_server))
    assert sorted(after) == sorted(before)
    changed = [k for k in after if after[k] != before[k]]
    assert changed == [f"crawls/{CRAWL}/manifest.jsonl"]  # lines noting "written": false
    assert again.stats["objects"] == 1  # nothing but the manifest rewritten
    assert again.stats["existing"] > 0


def test_verify_passes_then_catches_tampering(archived, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(archived["tmp"] / "arch", root)
    archive = open_archive(str(root))
    report = archive.verify()
    assert report.ok and report.checked == len(archived["local"]) - 1  # all but the manifest
    wanzai = site_part("www.wanzai.gov.cn")
    target = root / f"docs/{wanzai}/d006/v1/text"
    target.write_bytes(target.read_bytes().replace("万载".encode(), "万戴".encode(), 1))
    (root / "attachments").rename(root / "moved")
    report = archive.verify()
    assert not report.ok
    assert any("d006/v1/text: sha256" in b for b in report.bad)
    assert any(b.endswith("/body: missing") for b in report.bad)


# --- integrity of uploads -----------------------------------------------------------------


def test_s3_put_checks_the_checksum(s3_server, s3_bucket):  # noqa: F811
    archive = open_archive(f"s3://{s3_bucket}/p/", **s3_opts(s3_server))
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(StoreError, match="different SHA-256"):
        archive.store.put("x/y", b"data", wrong, "text/plain")
    md5 = open_archive(f"s3://{s3_bucket}/m/", checksum="md5", **s3_opts(s3_server))
    with pytest.raises(StoreError, match="checksum mismatch"):
        md5.store.put("x/y", b"data", wrong, "text/plain")
    md5.put("x/y", b"data")
    assert md5.get("x/y") == b"data"
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="m/x/y")
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"data").hexdigest()


def test_immutable_keys_are_never_overwritten(tmp_path):
    from crawler.archive import ObjectConflictError

    archive = open_archive(str(tmp_path))
    assert archive.put("docs/a/b/v1/text", b"one").written
    assert not archive.put("docs/a/b/v1/text", b"one").written
    with pytest.raises(ObjectConflictError):
        archive.put("docs/a/b/v1/text", b"two")
    assert archive.get("docs/a/b/v1/text") == b"one"


def test_no_dedup_verdict_continues_the_history(tmp_path):
    """item.dedup None (dedup off): new -> v1, same text -> nothing, other text -> v2."""
    def item(body_extra: bytes = b"") -> PageItem:
        it = article("042", NEW, "x")
        it.dedup = None
        if body_extra:
            it.document.text += body_extra.decode()
        return it

    uri = str(tmp_path / "a")
    run(uri, tmp_path / "s1", [item()])
    w = run(uri, tmp_path / "s2", [item()])
    w3 = run(uri, tmp_path / "s3", [item(" 补充说明".encode())])
    docs = sorted(k for k in snapshot(uri) if k.startswith("docs/"))
    assert [k.rsplit("/", 2)[1] for k in docs] == ["v1", "v1", "v2", "v2"]
    assert w.stats["objects"] == 0 or all("docs/" not in k for k in w.stats)
    assert w3.stats["version_conflicts"] == 0


# --- URIs and keys --------------------------------------------------------------------------


@pytest.mark.parametrize("uri, message", [
    ("s3://", "names no bucket"),
    ("s3:///prefix", "names no bucket"),
    ("s3://Bad_Bucket/x", "not a valid bucket name"),
    ("s3://ab/x", "not a valid bucket name"),
    ("s3://bucket/../etc", "not allowed"),
    ("s3://bucket/a?x=1", "query strings"),
    ("s3://key:secret@bucket/a", "credentials"),
    ("gs://bucket/a", "unsupported archive URI scheme"),
    ("", "no archive URI"),
    ("file://otherhost/x", "cannot name a host"),
])
def test_bad_uris_fail_loudly(uri, message):
    with pytest.raises(ArchiveConfigError, match=message):
        open_archive(uri)


def test_uri_normalisation(tmp_path):
    from crawler.archive import validate_uri

    assert validate_uri("s3://bucket/prefix") == "s3://bucket/prefix/"
    with pytest.raises(ArchiveConfigError, match="names no bucket"):
        validate_uri("s3://")
    assert open_archive("s3://bucket/a/b").uri == "s3://bucket/a/b/"
    assert open_archive("s3://bucket//a//").uri == "s3://bucket/a/"
    assert open_archive("s3://bucket").uri == "s3://bucket/"
    assert open_archive(str(tmp_path)).uri == tmp_path.as_uri() + "/"
    assert open_archive(tmp_path.as_uri()).uri == tmp_path.as_uri() + "/"


def test_missing_bucket_fails_at_open(s3_server, tmp_path):  # noqa: F811
    archive = open_archive("s3://no-such-bucket-here/x/", **s3_opts(s3_server))
    with pytest.raises(ArchiveConfigError, match="does not exist"):
        ArchiveWriter(archive, tmp_path, CRAWL).open()


ATTACKS = ["../../etc", "%2e%2e/%2e%2e/etc", "/etc/passwd", "..\\..\\windows", "..",
           "a/../../b", "C:\\Windows\\System32", "\x00evil\n", ".hidden", "~/x"]


@pytest.mark.parametrize("evil", ATTACKS)
def test_traversal_cannot_escape_the_archive(tmp_path, evil):
    root = tmp_path / "archive"
    item = article("042", NEW, evil, site=evil,
                   url=f"http://www.kepu.gov.cn/{evil}/../../../etc/passwd%2e%2e%2f")
    dup = article("042", DUPLICATE, evil, site=evil, canonical=evil,
                  url=f"http://x.gov.cn/{evil}")
    att = attachment(f"http://x.gov.cn/{evil}/a.pdf", f"http://x.gov.cn/{evil}", evil)
    att.site = evil
    run(str(root), tmp_path / "state", [item, dup, att])
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    outside = [p for p in written
               if not (p.is_relative_to(root) or p.is_relative_to(tmp_path / "state"))]
    assert outside == []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        assert SAFE_KEY.match(rel) and ".." not in rel, rel


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", ".x",
                                 "a/\x00", ""])
def test_stores_reject_unsafe_keys(tmp_path, key):
    with pytest.raises(UnsafeKeyError):
        check_key(key)
    with pytest.raises(UnsafeKeyError):
        LocalStore(tmp_path).put(key, b"x", hashlib.sha256(b"x").hexdigest(), "text/plain")


def test_warc_records_are_gzip_members_at_the_set_level(tmp_path):
    """Each record is its own gzip member (what warcio writes, and what the recorded offsets
    point at), compressed at GZIP_LEVEL: the bytes are those of zlib at that level."""
    import gzip
    import zlib

    from crawler.archive.warc import GZIP_LEVEL, WarcSegments

    page = (CORPUS / "pages" / "006.html").read_bytes()
    rec = ResponseRecord(url=manifest()["006"]["url"], status=200,
                         headers=[("Content-Type", "text/html")], body=page,
                         fetched_at="2024-06-01T00:00:00Z")
    segments = WarcSegments(tmp_path, CRAWL)
    where = segments.write_exchange(rec)
    [(_, path)] = segments.finish()
    data = path.read_bytes()
    member = data[where["offset"]:where["offset"] + where["length"]]
    raw = gzip.decompress(member)  # one whole member: the response record alone
    assert raw.startswith(b"WARC/1.0\r\n") and b"WARC-Type: response" in raw and page in raw
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    assert member[10:] == (z.compress(raw) + z.flush())[10:]  # past the gzip header
    types = [r.rec_type for r in ArchiveIterator(io.BytesIO(data))]
    assert types == ["warcinfo", "response", "request"]


@pytest.mark.parametrize("other_crawl", ["00000000T000000Z-first", "99991231T235959Z-last"])
def test_verify_takes_any_recorded_write_of_an_object_rewritten_by_another_crawl(
        archived, tmp_path, other_crawl):
    """Two crawls wrote one key (a cluster worker re-crawled a document whose first worker died
    before its verdict was committed): the object holds one of the recorded writes, whichever
    crawl sorts last. Bytes no crawl recorded are still BAD."""
    import hashlib
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(archived["tmp"] / "arch", root)
    wanzai = site_part("www.wanzai.gov.cn")
    key = f"docs/{wanzai}/d006/v1/meta.json"
    rewritten = (root / key).read_bytes().replace(CRAWL.encode(), other_crawl.encode())
    assert rewritten != (root / key).read_bytes()
    (root / key).write_bytes(rewritten)
    line = {"crawl_id": other_crawl, "objects": [
        {"key": key, "sha256": hashlib.sha256(rewritten).hexdigest(), "written": True}]}
    (root / "crawls" / other_crawl).mkdir(parents=True)
    (root / "crawls" / other_crawl / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    archive = open_archive(str(root))
    assert other_crawl in archive.crawls()
    assert archive.verify().ok
    (root / key).write_bytes(rewritten + b" ")
    report = archive.verify()
    assert [b for b in report.bad if b.startswith(key)], report.bad


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_writer_killed_after_uploading_before_journalling_leaves_nothing_verify_rejects(
        tmp_path, s3_server, where):  # noqa: F811
    """A worker SIGKILLed between an object's upload and its manifest line: the worker that
    re-crawls the document finds ``meta.json`` there (if_absent, not rewritten), and its
    manifest records the bytes the key holds, so ``archive verify`` passes."""
    from crawler.archive.executor import Executor

    if where == "local":
        uri, opts = (tmp_path / "arch").as_uri(), {}
    else:
        uri, opts = f"s3://{s3_server.create_bucket()}/gov/", s3_opts(s3_server)
    dead = ArchiveWriter(open_archive(uri, **opts), tmp_path / "dead", "20240601T000000Z-dead",
                         probe_interval=0)
    first = article("006", NEW, "d006", fetched_at="2024-06-01T00:00:00Z")
    first.crawl_id = dead.crawl_id
    done = Executor(open_archive(uri, **opts)).execute(dead.plan_item(first, [{}]))
    meta_key = next(r.key for r in done.results if r.key.endswith("meta.json"))
    stored = open_archive(uri, **opts).get(meta_key)

    writer = ArchiveWriter(open_archive(uri, **opts), tmp_path / "live", CRAWL, probe_interval=0)
    writer.open()
    writer.write(article("006", NEW, "d006", fetched_at="2024-06-01T08:00:00Z"))
    writer.close()
    archive = open_archive(uri, **opts)
    assert archive.get(meta_key) == stored  # if_absent: the first write stays
    [rec] = [o for line in archive.manifest(CRAWL) for o in line["objects"]
             if o["key"] == meta_key]
    assert rec == {"key": meta_key, "sha256": hashlib.sha256(stored).hexdigest(),
                   "bytes": len(stored), "written": False}
    report = archive.verify()
    assert report.ok and report.checked >= 2, report.bad
