"""Large objects go to S3 by streaming multipart upload (issue 13): boto3's managed transfer with
our TransferConfig, checked against moto's standalone server on 127.0.0.1.

The large attachment is a real one (tests/fixtures/attachments/a01.pdf) repeated until it passes
the threshold: the content does not matter to the transfer, only its size does.
"""

from __future__ import annotations

import hashlib
import re

from crawler.archive import ArchiveWriter, open_archive
from crawler.items import ATTACHMENT, PageItem, ResponseRecord
from tests.s3server import s3_env, s3_server  # noqa: F401
from tests.test_archive import CRAWL, REPO, s3_opts

MiB = 2**20
PART = 5 * MiB  # S3's smallest part


def big_attachment() -> PageItem:
    pdf = (REPO / "tests" / "fixtures" / "attachments" / "a01.pdf").read_bytes()
    body = pdf * (11 * MiB // len(pdf) + 1)  # a little over 11 MiB: three 5 MiB parts
    rec = ResponseRecord(url="https://www.atxlyj.cn/xxgk/ndbg/202101/P020210108999.pdf",
                         status=200, body=body, fetched_at="2024-06-01T08:00:05Z",
                         headers=[("Content-Type", "application/pdf")])
    return PageItem(site="www.atxlyj.cn", kind=ATTACHMENT, response=rec, crawl_id=CRAWL,
                    found_on="https://www.atxlyj.cn/xxgk/ndbg/index.html", link_text="年度报告")


def test_large_attachment_and_warc_segment_are_uploaded_in_parts(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.create_bucket()
    uri = f"s3://{bucket}/arch/"
    archive = open_archive(uri, multipart_threshold=PART, multipart_chunksize=PART,
                           **s3_opts(s3_server))
    writer = ArchiveWriter(archive, tmp_path / "state", CRAWL, probe_interval=0)
    writer.open()
    item = big_attachment()
    body = item.response.body
    writer.write(item)
    summary = writer.close()
    assert summary["spool_entries"] == 0

    client = s3_server.client()
    sha = hashlib.sha256(body).hexdigest()
    body_key = f"arch/attachments/{sha[:2]}/{sha}/body"
    head = client.head_object(Bucket=bucket, Key=body_key)
    parts = -(-len(body) // PART)
    assert parts == 3
    assert re.fullmatch(rf'"[0-9a-f]{{32}}-{parts}"', head["ETag"])  # a multipart upload
    # the ETag is the MD5 of the parts' MD5s, as we cut them
    md5s = b"".join(hashlib.md5(body[i:i + PART]).digest() for i in range(0, len(body), PART))
    assert head["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-{parts}"
    assert head["Metadata"]["sha256"] == sha
    assert client.get_object(Bucket=bucket, Key=body_key)["Body"].read() == body
    first = client.head_object(Bucket=bucket, Key=body_key, PartNumber=1)
    assert first["ContentLength"] == PART and first.get("PartsCount") == parts

    # the crawl's WARC segment holds the attachment too: over the threshold, also in parts
    warc_keys = [k for k in s3_server.keys(bucket, "arch/crawls/") if k.endswith(".warc.gz")]
    assert len(warc_keys) == 1
    warc_head = client.head_object(Bucket=bucket, Key=warc_keys[0])
    assert warc_head["ContentLength"] > PART
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', warc_head["ETag"])

    # small objects stay single PUTs; every object's bytes match the manifest's SHA-256
    ref_keys = [k for k in s3_server.keys(bucket, f"arch/attachments/{sha[:2]}/{sha}/refs/")]
    assert ref_keys and "-" not in client.head_object(Bucket=bucket, Key=ref_keys[0])["ETag"]
    report = open_archive(uri, **s3_opts(s3_server)).verify()
    assert report.ok and report.checked >= 3, report.bad
