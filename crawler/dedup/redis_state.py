"""Redis dedup state (``redis://HOST:PORT/DB``, ``rediss://`` for TLS): one state shared by every
worker of a cluster.

Same semantics as :class:`crawler.dedup.sqlite.SQLiteDedupState`: a worker reads its own
uncommitted writes, :meth:`~RedisDedupState.rollback` forgets them, and
:meth:`~RedisDedupState.commit` applies them to Redis in one atomic step (a Lua script inside
``MULTI``/``EXEC``), so a worker that dies never leaves half its writes, nor writes of an item the
archive did not acknowledge. Other workers see a worker's writes once it commits.

Key layout, under the prefix ``govcrawl:dedup:`` (``?prefix=NAME:`` in the URI to change it)::

    meta                 hash  key -> value
    urls                 hash  canonical URL -> JSON record (with its insertion number)
    url_seq              int   insertion counter (SQLite's rowid: the order of equal first_seen)
    ut:<fingerprint>     zset  URLs by (first_seen, insertion), lexicographic members
    ud:<doc_id>          zset  the same, per document
    docs                 hash  doc_id -> JSON record (signature hex)
    v:<doc_id>           hash  version -> JSON record
    identities, owners   hash  key -> doc_id, fingerprint -> doc_id (first writer wins)
    b:<band>:<key>       set   LSH bucket: doc_ids (datasketch's Redis storage keeps one set per
                               band key too); a document's band keys are those of its
                               signature in ``docs`` (a ``lsh_keys`` hash of earlier releases is
                               no longer read)
    n:versions, n:buckets int  row counts of the tables without a hash of their own

Concurrency between workers: a commit is atomic, and the first commit to claim an identity or a
text owner wins (``HSETNX``). Two workers deciding on the *same* text within one commit interval
(``GOVCRAWL_STATE_COMMIT_INTERVAL``) do not see each other's uncommitted claim; the archive keys
documents by doc_id, so a re-crawled URL is still stored once.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from crawler.dedup.state import (
    DedupRecordError,
    DedupState,
    DedupStateError,
    DocRecord,
    UrlRecord,
    VersionRecord,
)

T = TypeVar("T")

DEFAULT_PREFIX = "govcrawl:dedup:"

#: Applies a batch of writes atomically: ARGV is a flat list of ``op, n, arg1..argn``.
COMMIT_SCRIPT = """
local i = 1
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local a = ARGV
  if op == 'HSET' then redis.call('HSET', a[i+1], a[i+2], a[i+3]); i = i + 4
  elseif op == 'HDEL' then redis.call('HDEL', a[i+1], a[i+2]); i = i + 3
  elseif op == 'HSETNX' then redis.call('HSETNX', a[i+1], a[i+2], a[i+3]); i = i + 4
  elseif op == 'HDELIF' then
    if redis.call('HGET', a[i+1], a[i+2]) == a[i+3] then redis.call('HDEL', a[i+1], a[i+2]) end
    i = i + 4
  elseif op == 'HSETC' then
    if redis.call('HSET', a[i+1], a[i+2], a[i+3]) == 1 then redis.call('INCR', a[i+4]) end
    i = i + 5
  elseif op == 'HDELC' then
    if redis.call('HDEL', a[i+1], a[i+2]) == 1 then redis.call('DECR', a[i+3]) end
    i = i + 4
  elseif op == 'ZADD' then redis.call('ZADD', a[i+1], 0, a[i+2]); i = i + 3
  elseif op == 'ZREM' then redis.call('ZREM', a[i+1], a[i+2]); i = i + 3
  elseif op == 'SADDC' then
    if redis.call('SADD', a[i+1], a[i+2]) == 1 then redis.call('INCR', a[i+3]) end
    i = i + 4
  elseif op == 'SREMC' then
    if redis.call('SREM', a[i+1], a[i+2]) == 1 then redis.call('DECR', a[i+3]) end
    i = i + 4
  elseif op == 'CLEAR' then
    local cursor = '0'
    repeat
      local res = redis.call('SCAN', cursor, 'MATCH', a[i+1] .. '*', 'COUNT', 1000)
      cursor = res[1]
      for _, key in ipairs(res[2]) do
        if key ~= a[i+2] then redis.call('DEL', key) end
      end
    until cursor == '0'
    i = i + 3
  else
    return redis.error_reply('unknown dedup op ' .. tostring(op))
  end
end
return 1
"""
#: Writes per script call (several calls of one commit still run in one MULTI/EXEC).
CHUNK = 5000


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: RedisDedupState, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def split_uri(uri: str) -> tuple[str, str]:
    """``redis://h:p/db?prefix=x:`` -> (the URI redis-py connects to, the key prefix)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"not a redis URI (redis://HOST:PORT/DB): {uri!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX) or DEFAULT_PREFIX
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _dumps(value: list[Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _loads(data: bytes) -> list[Any]:
    return json.loads(data)


def _url_member(first_seen: str, seq: int, url: str) -> bytes:
    """Sorted-set member ordered as SQLite's ``ORDER BY first_seen, rowid``."""
    return f"{first_seen}\x00{seq:020d}\x00{url}".encode()


def _member_url(member: bytes) -> str:
    return member.decode("utf-8").split("\x00", 2)[2]


class RedisDedupState(DedupState):
    """:class:`DedupState` in Redis; uncommitted writes are kept in this process until commit."""

    unavailable = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, uri: str = ""):
        self.client = client
        self.prefix = prefix
        self.uri = uri or f"redis://?prefix={prefix}"
        self._lock = threading.RLock()
        self._script = client.register_script(COMMIT_SCRIPT)
        self._reset()
        try:
            client.ping()
        except redis.RedisError as exc:
            raise DedupStateError(f"dedup state {self.uri}: Redis is not reachable ({exc})") \
                from None

    @classmethod
    def from_uri(cls, uri: str, settings: Any = None) -> RedisDedupState:
        address, prefix = split_uri(uri)
        client = redis.Redis.from_url(address, socket_timeout=30, socket_connect_timeout=10,
                                      health_check_interval=30)
        return cls(client, prefix, uri)

    # the uncommitted overlay ------------------------------------------------------------------
    def _reset(self) -> None:
        self._ops: list[Any] = []
        self._cleared = False
        self._fields: dict[str, dict[bytes, bytes | None]] = {}  # hash key -> field -> value
        self._sets: dict[str, set[bytes]] = {}  # set / zset key -> members (loaded on touch)
        self._deltas: dict[str, int] = {}  # counter key -> change

    def _k(self, name: str) -> str:
        return self.prefix + name

    def _hget(self, key: str, field: bytes) -> bytes | None:
        overlay = self._fields.get(key)
        if overlay is not None and field in overlay:
            return overlay[field]
        return None if self._cleared else self.client.hget(key, field)

    def _hset(self, key: str, field: bytes, value: bytes | None, op: str = "",
              *extra: Any) -> None:
        self._fields.setdefault(key, {})[field] = value
        if value is None:
            self._ops.append((op or "HDEL", key, field, *extra))
        else:
            self._ops.append((op or "HSET", key, field, value, *extra))

    def _members(self, key: str) -> set[bytes]:
        members = self._sets.get(key)
        if members is None:
            members = set() if self._cleared else set(self.client.smembers(key)) \
                if key.startswith(self._k("b:")) else set(self.client.zrange(key, 0, -1))
            self._sets[key] = members
        return members

    def _read_members(self, key: str, limit: int) -> list[bytes]:
        if key in self._sets:
            return sorted(self._sets[key])[:limit]
        if self._cleared:
            return []
        return list(self.client.zrange(key, 0, limit - 1))

    def _count(self, counter: str, delta: int) -> None:
        self._deltas[counter] = self._deltas.get(counter, 0) + delta

    # URL records ----------------------------------------------------------------------------
    def _url_row(self, url: str) -> list[Any] | None:
        data = self._hget(self._k("urls"), url.encode("utf-8"))
        return _loads(data) if data is not None else None

    @_locked
    def _get_url(self, url: str) -> UrlRecord | None:
        row = self._url_row(url)
        return UrlRecord(url, *row[:8]) if row else None

    def _unindex_url(self, url: str, row: list[Any]) -> None:
        member = _url_member(row[6], row[8], url)
        for key in (self._k("ut:" + row[7]), self._k("ud:" + row[0])):
            self._members(key).discard(member)
            self._ops.append(("ZREM", key, member))

    @_locked
    def _put_url(self, r: UrlRecord) -> None:
        old = self._url_row(r.url)
        if old is not None:
            first_seen, seq = old[6], old[8]
            self._unindex_url(r.url, old)
        else:
            first_seen, seq = r.first_seen or r.last_seen, int(self.client.incr(self._k("url_seq")))
        row = [r.doc_id, r.version, r.text_hash, r.etag, r.last_modified, r.last_seen, first_seen,
               r.fingerprint, seq]
        self._hset(self._k("urls"), r.url.encode("utf-8"), _dumps(row))
        member = _url_member(first_seen, seq, r.url)
        for key in (self._k("ut:" + r.fingerprint), self._k("ud:" + r.doc_id)):
            self._members(key).add(member)
            self._ops.append(("ZADD", key, member))

    @_locked
    def delete_url(self, url: str) -> None:
        old = self._url_row(url)
        if old is not None:
            self._unindex_url(url, old)
            self._hset(self._k("urls"), url.encode("utf-8"), None)

    @_locked
    def urls_with_text(self, fingerprint: str, limit: int = 100) -> list[str]:
        return [_member_url(m) for m in self._read_members(self._k("ut:" + fingerprint), limit)]

    @_locked
    def urls_for_doc(self, doc_id: str, limit: int = 100) -> list[str]:
        return [_member_url(m) for m in self._read_members(self._k("ud:" + doc_id), limit)]

    # documents and versions -----------------------------------------------------------------
    @_locked
    def get_doc(self, doc_id: str) -> DocRecord | None:
        data = self._hget(self._k("docs"), doc_id.encode("utf-8"))
        if data is None:
            return None
        row = _loads(data)
        row[6] = bytes.fromhex(row[6]) if row[6] is not None else None
        return DocRecord(doc_id, *row)

    @_locked
    def put_doc(self, r: DocRecord) -> None:
        row = [r.version, r.fingerprint, r.text_hash, r.url, r.canonical_id, r.similarity,
               r.signature.hex() if r.signature is not None else None, r.index_key, r.updated]
        self._hset(self._k("docs"), r.doc_id.encode("utf-8"), _dumps(row))

    @_locked
    def delete_doc(self, doc_id: str) -> None:
        self._hset(self._k("docs"), doc_id.encode("utf-8"), None)

    @_locked
    def add_version(self, r: VersionRecord) -> None:
        key, field = self._k("v:" + r.doc_id), str(r.version).encode()
        if self._hget(key, field) is not None:
            raise DedupRecordError(f"version {r.version} of {r.doc_id} exists already")
        row = [r.text_hash, r.fingerprint, r.url, r.outcome, r.canonical_id, r.seen_at]
        self._hset(key, field, _dumps(row), "HSETC", self._k("n:versions"))
        self._count(self._k("n:versions"), 1)

    @_locked
    def versions(self, doc_id: str) -> list[VersionRecord]:
        key = self._k("v:" + doc_id)
        rows = {} if self._cleared else dict(self.client.hgetall(key))
        rows.update(self._fields.get(key, {}))
        return [VersionRecord(doc_id, int(v), *_loads(data))
                for v, data in sorted(rows.items(), key=lambda kv: int(kv[0]))
                if data is not None]

    @_locked
    def delete_version(self, doc_id: str, version: int) -> None:
        key, field = self._k("v:" + doc_id), str(version).encode()
        if self._hget(key, field) is not None:
            self._hset(key, field, None, "HDELC", self._k("n:versions"))
            self._count(self._k("n:versions"), -1)

    # identities and owners --------------------------------------------------------------------
    def _get_str(self, table: str, key: str) -> str | None:
        data = self._hget(self._k(table), key.encode("utf-8"))
        return data.decode("utf-8") if data is not None else None

    @_locked
    def get_identity(self, key: str) -> str | None:
        return self._get_str("identities", key)

    @_locked
    def put_identity(self, key: str, doc_id: str) -> None:
        if self._get_str("identities", key) is None:
            self._hset(self._k("identities"), key.encode("utf-8"), doc_id.encode(), "HSETNX")

    @_locked
    def delete_identity(self, key: str) -> None:
        self._hset(self._k("identities"), key.encode("utf-8"), None)

    @_locked
    def get_owner(self, fingerprint: str) -> str | None:
        return self._get_str("owners", fingerprint)

    @_locked
    def put_owner(self, fingerprint: str, doc_id: str) -> None:
        if self._get_str("owners", fingerprint) is None:
            self._hset(self._k("owners"), fingerprint.encode(), doc_id.encode(), "HSETNX")

    @_locked
    def delete_owner(self, fingerprint: str, doc_id: str) -> None:
        if self._get_str("owners", fingerprint) == doc_id:
            self._fields.setdefault(self._k("owners"), {})[fingerprint.encode()] = None
            self._ops.append(("HDELIF", self._k("owners"), fingerprint.encode(), doc_id.encode()))

    # LSH buckets ------------------------------------------------------------------------------
    def _bucket(self, band: int, key: bytes) -> str:
        return f"{self.prefix}b:{band}:{key.hex()}"

    @_locked
    def bucket_get(self, band: int, key: bytes) -> list[str]:
        bucket = self._bucket(band, key)
        if bucket in self._sets:
            members: Iterable[bytes] = self._sets[bucket]
        else:
            members = () if self._cleared else self.client.smembers(bucket)
        return sorted(m.decode() for m in members)

    @_locked
    def buckets_get(self, keys: Iterable[tuple[int, bytes]]) -> set[str]:
        buckets = [self._bucket(band, key) for band, key in keys]
        found = {m for b in buckets if b in self._sets for m in self._sets[b]}
        remote = [] if self._cleared else [b for b in buckets if b not in self._sets]
        if remote:
            with self.client.pipeline(transaction=False) as pipe:
                for bucket in remote:
                    pipe.smembers(bucket)
                for members in pipe.execute():
                    found.update(members)
        return {m.decode() for m in found}

    @_locked
    def bucket_add(self, band: int, key: bytes, doc_id: str) -> None:
        bucket, member = self._bucket(band, key), doc_id.encode()
        members = self._members(bucket)
        if member not in members:
            members.add(member)
            self._count(self._k("n:buckets"), 1)
        self._ops.append(("SADDC", bucket, member, self._k("n:buckets")))

    @_locked
    def bucket_remove(self, band: int, key: bytes, doc_id: str) -> None:
        bucket, member = self._bucket(band, key), doc_id.encode()
        members = self._members(bucket)
        if member in members:
            members.discard(member)
            self._count(self._k("n:buckets"), -1)
        self._ops.append(("SREMC", bucket, member, self._k("n:buckets")))

    # housekeeping -----------------------------------------------------------------------------
    @_locked
    def get_meta(self, key: str) -> str | None:
        return self._get_str("meta", key)

    @_locked
    def set_meta(self, key: str, value: str) -> None:
        self._hset(self._k("meta"), key.encode("utf-8"), value.encode("utf-8"))

    def _hlen(self, table: str) -> int:
        key = self._k(table)
        if self._cleared:
            return sum(v is not None for v in self._fields.get(key, {}).values())
        count = int(self.client.hlen(key))
        overlay = self._fields.get(key, {})
        if overlay:
            with self.client.pipeline(transaction=False) as pipe:
                for field in overlay:
                    pipe.hexists(key, field)
                stored = pipe.execute()
            count += sum((value is not None) - bool(was)
                         for value, was in zip(overlay.values(), stored, strict=True))
        return count

    def _counter(self, name: str) -> int:
        key = self._k(name)
        stored = 0 if self._cleared else int(self.client.get(key) or 0)
        return stored + self._deltas.get(key, 0)

    @_locked
    def counts(self) -> dict[str, int]:
        return {"urls": self._hlen("urls"), "docs": self._hlen("docs"),
                "versions": self._counter("n:versions"), "identities": self._hlen("identities"),
                "owners": self._hlen("owners"), "buckets": self._counter("n:buckets")}

    @_locked
    def clear(self) -> None:
        self._reset()
        self._cleared = True
        # every key of the prefix but the insertion counter (order must survive the clear)
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix)
        self._ops.append(("CLEAR", pattern, self._k("url_seq")))

    def iter_urls(self) -> Iterator[UrlRecord]:
        for field, data in self.client.hscan_iter(self._k("urls"), count=1000):
            yield UrlRecord(field.decode("utf-8"), *_loads(data)[:8])

    def iter_versions(self) -> Iterator[VersionRecord]:
        for key in self.client.scan_iter(match=self._k("v:") + "*", count=1000):
            doc_id = key.decode("utf-8")[len(self._k("v:")):]
            for version, data in self.client.hgetall(key).items():
                yield VersionRecord(doc_id, int(version), *_loads(data))

    @_locked
    def commit(self) -> None:
        if self.closed or not self._ops:
            self._reset()
            return
        with self.client.pipeline(transaction=True) as pipe:
            for start in range(0, len(self._ops), CHUNK):
                args: list[Any] = []
                for op in self._ops[start:start + CHUNK]:
                    args.extend(op)
                self._script(args=args, client=pipe)
            pipe.execute()
        self._reset()

    @_locked
    def rollback(self) -> None:
        self._reset()

    @_locked
    def _close(self) -> None:
        self.client.close()
