"""Object stores behind the archive, chosen by URI scheme (like Scrapy's FilesPipeline stores).

* a plain path or ``file://`` URI: :class:`LocalStore`, a directory tree;
* ``s3://bucket/prefix/``: :class:`S3Store` (boto3; AWS, MinIO, Ceph, Aliyun OSS, Tencent COS).

Both take the same relative keys (see :mod:`crawler.archive.layout`) and check every write against
the SHA-256 the caller computed beforehand.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from crawler.archive.layout import check_key

logger = logging.getLogger(__name__)

Data = bytes | Path  # an in-memory body, or a local file to upload
_CHUNK = 1 << 20


class ArchiveError(Exception):
    """Base class of the archive's errors; the message is meant for the user as is."""


class ArchiveConfigError(ArchiveError):
    """A bad archive URI or option: fix the configuration."""


class StoreError(ArchiveError):
    """The store did not answer or refused a request (after retries)."""


@dataclass
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # recorded checksum when the store keeps one


def multipart_digests(data: Data, chunksize: int) -> tuple[str, str]:
    """``(sha256 hex, S3 multipart ETag)`` of bytes or a file cut in ``chunksize`` parts."""
    sha = hashlib.sha256()
    parts: list[bytes] = []

    def part(chunk: bytes | memoryview) -> None:
        sha.update(chunk)
        parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())

    if isinstance(data, bytes):
        view = memoryview(data)  # parts hashed in place, not copied
        for start in range(0, len(data), chunksize):
            part(view[start:start + chunksize])
    else:
        with open(data, "rb") as fh:
            while chunk := fh.read(chunksize):
                part(chunk)
    etag = hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
    return sha.hexdigest(), f"{etag}-{len(parts)}"


def hash_data(data: Data) -> tuple[str, str, int]:
    """``(sha256 hex, md5 hex, size)`` of bytes or of a file."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    if isinstance(data, bytes):
        sha.update(data)
        md5.update(data)
        size = len(data)
    else:
        with open(data, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


class Store:
    """Interface of an object store holding the archive's keys."""

    scheme = ""
    uri = ""

    def put(self, key: str, data: Data, sha256: str, content_type: str) -> None:
        """Write ``key`` (replacing it) and verify that what was stored hashes to ``sha256``."""
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def checksum(self, key: str) -> str | None:
        """The recorded SHA-256 of ``key`` (computed when the store records none)."""
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        """The bytes of ``key`` in chunks (``KeyError`` if it does not exist)."""
        yield self.get(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix`` (a ``/``-terminated folder or empty)."""
        raise NotImplementedError

    def children(self, prefix: str = "") -> list[str]:
        """Names of the immediate sub-folders of ``prefix``."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers now."""

    def close(self) -> None:
        pass

    @classmethod
    def validate(cls, uri: str) -> str:
        """The normalised form of ``uri``; raise :class:`ArchiveConfigError` if unusable."""
        raise NotImplementedError

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> Store:
        raise NotImplementedError

    @classmethod
    def options_from_settings(cls, settings: Any) -> dict[str, Any]:
        """Constructor options from Scrapy settings."""
        return {}


# --- local directory ----------------------------------------------------------------------


class LocalStore(Store):
    """A directory; each write goes to a temporary file renamed into place (no fsync per object)."""

    scheme = "file"

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri() + "/"

    def _path(self, key: str) -> Path:
        # check_key admits relative names only, no segment starting with a dot: the path stays
        # under the root by construction (no realpath per object; symlinked folders still work)
        return self.root / check_key(key)

    def put(self, key: str, data: Data, sha256: str, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            digest = hashlib.sha256()
            try:
                with open(tmp, "wb") as out:
                    if isinstance(data, bytes):
                        out.write(data)
                        digest.update(data)
                    else:
                        with open(data, "rb") as src:
                            while chunk := src.read(_CHUNK):
                                out.write(chunk)
                                digest.update(chunk)
                if digest.hexdigest() != sha256:
                    raise StoreError(f"checksum mismatch writing {key}")
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise StoreError(f"cannot write {key} under {self.root}: {reason}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, self._path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def checksum(self, key: str) -> str | None:
        path = self._path(key)
        return hash_data(path)[0] if path.is_file() else None

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StoreError(f"cannot read {key}: {exc.strerror or exc}") from exc

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        try:
            fh = open(self._path(key), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise KeyError(key) from None
        with fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temporary files
                yield Path(dirpath, name).relative_to(self.root).as_posix()

    def children(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def ping(self) -> None:
        """Create the directory and write to it; :class:`StoreError` if it cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"archive {self.root} is not a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".ping.{uuid.uuid4().hex[:12]}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"archive {self.root} is not a writable directory: "
                                     f"{exc.strerror or exc}") from exc

    @classmethod
    def validate(cls, uri: str) -> str:
        local_root(uri)
        return uri

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> LocalStore:
        return cls(local_root(uri))


# --- S3 -------------------------------------------------------------------------------------

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._=+-]+$")


class S3Store(Store):
    """An S3 bucket and prefix through boto3.

    Credentials come from the standard AWS chain unless given; they are never logged.
    ``checksum="sha256"`` sends ``x-amz-checksum-sha256`` (``ChecksumAlgorithm='SHA256'``);
    ``"md5"`` sends ``Content-MD5`` (for stores that lack the newer checksum headers). Either way
    the store's answer (returned checksum or MD5 ETag) is compared with our own digest.

    Objects from ``multipart_threshold`` bytes up (WARC segments, large attachments, spooled
    files) are streamed with boto3's managed transfer (multipart upload, ``multipart_chunksize``
    parts, never read whole into memory); S3 checks each part's checksum, and the multipart
    ETag is compared with the one computed locally from the same parts.

    Retries are botocore's alone (``retry_mode``, default ``adaptive``: exponential backoff
    plus client-side rate limiting when S3 answers 503 SlowDown; ``max_attempts`` in all).
    """

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        addressing_style: str | None = None,
        checksum: str = "sha256",
        max_attempts: int = 5,
        retry_mode: str = "adaptive",
        connect_timeout: float = 5,
        read_timeout: float = 60,
        multipart_threshold: int = 16 * 2**20,
        multipart_chunksize: int = 8 * 2**20,
        verify: bool | str | None = None,
        client: Any = None,
    ):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if checksum not in ("sha256", "md5"):
            raise ArchiveConfigError(f"unknown S3 checksum {checksum!r} (use sha256 or md5)")
        if retry_mode not in ("adaptive", "standard", "legacy"):
            raise ArchiveConfigError(
                f"unknown S3 retry mode {retry_mode!r} (use adaptive, standard or legacy)")
        if int(multipart_chunksize) < 5 * 2**20:
            raise ArchiveConfigError("S3 multipart parts must be at least 5 MiB")
        self.bucket, self.prefix, self.checksum_mode = bucket, prefix, checksum
        self.uri = f"s3://{bucket}/{prefix}"
        self.multipart_threshold = int(multipart_threshold)
        self.multipart_chunksize = int(multipart_chunksize)
        self.transfer = TransferConfig(multipart_threshold=self.multipart_threshold,
                                       multipart_chunksize=self.multipart_chunksize,
                                       max_concurrency=4)
        if client is None:
            config = Config(
                retries={"max_attempts": max(1, int(max_attempts)), "mode": retry_mode},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                s3={"addressing_style": addressing_style or "auto"},
                # botocore >= 1.36 adds CRC32 trailers by default, which several S3-compatible
                # stores reject; we send our own checksum explicitly instead.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            )
            session = boto3.session.Session(
                aws_access_key_id=aws_access_key_id or None,
                aws_secret_access_key=aws_secret_access_key or None,
                aws_session_token=aws_session_token or None,
                region_name=region_name or None,
            )
            client = session.client(
                "s3", endpoint_url=endpoint_url or None, config=config, verify=verify
            )
        self.client = client

    @classmethod
    def validate(cls, uri: str) -> str:
        bucket, prefix = parse_s3_uri(uri)
        return f"s3://{bucket}/{prefix}"

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> S3Store:
        return cls(*parse_s3_uri(uri), **options)

    @classmethod
    def options_from_settings(cls, settings: Any) -> dict[str, Any]:
        """Scrapy's own ``AWS_*`` names + ``GOVCRAWL_S3_*``."""
        opts: dict[str, Any] = dict(
            endpoint_url=settings.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL"),
            region_name=settings.get("AWS_REGION_NAME"),
            aws_access_key_id=settings.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=settings.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=settings.get("AWS_SESSION_TOKEN"),
            addressing_style=settings.get("GOVCRAWL_S3_ADDRESSING_STYLE"),
            checksum=settings.get("GOVCRAWL_S3_CHECKSUM") or "sha256",
            max_attempts=settings.getint("GOVCRAWL_S3_MAX_ATTEMPTS", 5),
            retry_mode=settings.get("GOVCRAWL_S3_RETRY_MODE") or "adaptive",
            connect_timeout=settings.getfloat("GOVCRAWL_S3_CONNECT_TIMEOUT", 5),
            read_timeout=settings.getfloat("GOVCRAWL_S3_READ_TIMEOUT", 60),
            multipart_threshold=settings.getint("GOVCRAWL_S3_MULTIPART_THRESHOLD", 16 * 2**20),
            multipart_chunksize=settings.getint("GOVCRAWL_S3_MULTIPART_CHUNKSIZE", 8 * 2**20),
        )
        verify = settings.get("AWS_VERIFY")
        if verify is not None:
            opts["verify"] = verify
        return opts

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            detail = f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return StoreError(f"S3 {action} s3://{self.bucket}/{self.prefix}{key} failed ({detail})")

    def _size(self, data: Data) -> int:
        return len(data) if isinstance(data, bytes) else Path(data).stat().st_size

    def put(self, key: str, data: Data, sha256: str, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            size = self._size(data)
        except OSError as exc:
            raise StoreError(f"cannot read what to upload to {key}: {exc}") from exc
        if size >= self.multipart_threshold:
            return self._put_multipart(key, data, sha256, content_type, size)
        sha_hex, md5_hex = (sha256, None) if self.checksum_mode == "sha256" else (
            hash_data(data)[:2]
        )
        if sha_hex != sha256:
            raise StoreError(f"checksum mismatch before uploading {key}")
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._k(key),
            "ContentType": content_type,
            "Metadata": {"sha256": sha256},
        }
        if self.checksum_mode == "sha256":
            args["ChecksumAlgorithm"] = "SHA256"
        else:
            args["ContentMD5"] = base64.b64encode(bytes.fromhex(md5_hex)).decode()
        try:
            if isinstance(data, bytes):
                resp = self.client.put_object(Body=data, **args)
            else:
                with open(data, "rb") as body:
                    resp = self.client.put_object(Body=body, **args)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._fail("put", key, exc) from exc
        returned = resp.get("ChecksumSHA256")
        if returned:
            if base64.b64decode(returned).hex() != sha256:
                raise StoreError(f"S3 put {key}: store computed a different SHA-256")
            return
        etag = (resp.get("ETag") or "").strip('"')
        if re.fullmatch(r"[0-9a-f]{32}", etag):
            if md5_hex is None:
                _, md5_hex, _ = hash_data(data)
            if etag != md5_hex:
                raise StoreError(f"S3 put {key}: ETag does not match the MD5 of what was sent")

    def _put_multipart(self, key: str, data: Data, sha256: str, content_type: str,
                       size: int) -> None:
        """Stream ``data`` with boto3's managed transfer, then check the multipart ETag."""
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.utils import ChunksizeAdjuster

        chunksize = ChunksizeAdjuster().adjust_chunksize(self.multipart_chunksize, size)
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": {"sha256": sha256}}
        if self.checksum_mode == "sha256":
            extra["ChecksumAlgorithm"] = "SHA256"
        sha_hex, want_etag = multipart_digests(data, chunksize)
        if sha_hex != sha256:
            raise StoreError(f"checksum mismatch before uploading {key}")
        try:
            if isinstance(data, bytes):
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._k(key),
                                           ExtraArgs=extra, Config=self.transfer)
            else:
                self.client.upload_file(str(data), self.bucket, self._k(key),
                                        ExtraArgs=extra, Config=self.transfer)
            resp = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._fail("multipart upload", key, exc) from exc
        except Exception as exc:  # s3transfer wraps failures in its own exception types
            raise self._fail("multipart upload", key, exc) from exc
        etag = (resp.get("ETag") or "").strip('"')
        if int(resp.get("ContentLength", -1)) != size:
            raise StoreError(f"S3 upload {key}: stored size differs from what was sent")
        if re.fullmatch(r"[0-9a-f]{32}-\d+", etag) and etag != want_etag:
            raise StoreError(f"S3 upload {key}: multipart ETag does not match the parts sent")

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("head", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from exc
        meta = resp.get("Metadata") or {}
        return ObjectInfo(key, int(resp.get("ContentLength", 0)), meta.get("sha256"))

    def checksum(self, key: str) -> str | None:
        info = self.head(key)
        if info is None:
            return None
        if info.sha256:
            return info.sha256
        digest = hashlib.sha256()
        for chunk in self.iter_bytes(key):
            digest.update(chunk)
        return digest.hexdigest()

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise self._fail("get", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("get", key, exc) from exc

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
            yield from body.iter_chunks(_CHUNK)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise self._fail("get", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("get", key, exc) from exc

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        args = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if delimiter:
            args["Delimiter"] = delimiter
        try:
            yield from self.client.get_paginator("list_objects_v2").paginate(**args)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        for page in self._pages(prefix, None):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix):]

    def children(self, prefix: str = "") -> list[str]:
        names = []
        for page in self._pages(prefix, "/"):
            for cp in page.get("CommonPrefixes", []):
                names.append(cp["Prefix"][len(self.prefix) + len(prefix):].rstrip("/"))
        return sorted(names)

    def ping(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise ArchiveConfigError(
                    f"S3 bucket {self.bucket!r} does not exist (archive {self.uri})"
                ) from None
            if code in ("403", "AccessDenied"):
                raise ArchiveConfigError(
                    f"access to S3 bucket {self.bucket!r} denied: check credentials"
                ) from None
            raise self._fail("head-bucket", "", exc) from exc
        except BotoCoreError as exc:
            raise self._fail("head-bucket", "", exc) from exc

    def close(self) -> None:
        self.client.close()


# --- URIs -----------------------------------------------------------------------------------


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b/")``; raise :class:`ArchiveConfigError` if bad."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise ArchiveConfigError(
            f"archive URI {uri!r}: query strings and fragments are not allowed"
        )
    bucket = parts.netloc
    if not bucket:
        raise ArchiveConfigError(f"archive URI {uri!r} names no bucket: use s3://BUCKET/PREFIX/")
    if "@" in bucket or ":" in bucket:
        raise ArchiveConfigError(
            f"archive URI {uri!r}: put credentials and endpoints in AWS settings, not in the URI"
        )
    if not _BUCKET.match(bucket) or ".." in bucket or re.fullmatch(r"[\d.]+", bucket):
        raise ArchiveConfigError(
            f"archive URI {uri!r}: {bucket!r} is not a valid bucket name "
            "(3-63 lowercase letters, digits, dots, hyphens)"
        )
    segments = [s for s in parts.path.split("/") if s]
    for seg in segments:
        if seg in (".", "..") or not _PREFIX_PART.match(seg):
            raise ArchiveConfigError(
                f"archive URI {uri!r}: prefix segment {seg!r} is not allowed "
                "(use letters, digits and . _ - = +)"
            )
    return bucket, "".join(f"{s}/" for s in segments)


def local_root(uri: str) -> Path:
    """The directory of a plain path or ``file://`` URI."""
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise ArchiveConfigError(f"archive URI {uri!r}: file:// URIs cannot name a host")
        if parts.query or parts.fragment:
            raise ArchiveConfigError(f"archive URI {uri!r}: query strings are not allowed")
        path = unquote(parts.path)
        if not path:
            raise ArchiveConfigError(f"archive URI {uri!r} names no directory")
        return Path(path)
    return Path(uri)


#: Store class by URI scheme ("" is a plain path), as Scrapy's ``FilesPipeline.STORE_SCHEMES``.
STORE_SCHEMES: dict[str, type[Store]] = {"": LocalStore, "file": LocalStore, "s3": S3Store}


def uri_scheme(uri: str) -> str:
    if uri.startswith("file:"):
        return "file"
    return uri.split("://", 1)[0].lower() if "://" in uri else ""


def store_class(uri: str) -> type[Store]:
    """The store class for ``uri``'s scheme; :class:`ArchiveConfigError` if there is none."""
    scheme = uri_scheme(uri)
    cls = STORE_SCHEMES.get(scheme)
    if cls is None:
        known = ", ".join(f"{s}://" for s in STORE_SCHEMES if s)
        raise ArchiveConfigError(
            f"unsupported archive URI scheme {scheme!r} in {uri!r} (use a directory, {known})"
        )
    return cls


def validate_uri(uri: str) -> str:
    """The normalised form of an archive URI (``s3://b/p`` -> ``s3://b/p/``; a path -> itself);
    raise :class:`ArchiveConfigError` with a clear message if it is unusable. Connects nowhere."""
    if not isinstance(uri, str) or not uri.strip():
        raise ArchiveConfigError("no archive URI given (set GOVCRAWL_ARCHIVE)")
    uri = uri.strip()
    if any(ord(c) < 32 for c in uri):
        raise ArchiveConfigError(f"archive URI {uri!r} contains control characters")
    return store_class(uri).validate(uri)


def open_store(uri: str, **options: Any) -> Store:
    """The store for ``uri`` (looked up in :data:`STORE_SCHEMES`); ``options`` go to its
    constructor."""
    uri = validate_uri(uri)
    return store_class(uri).from_uri(uri, **options)
