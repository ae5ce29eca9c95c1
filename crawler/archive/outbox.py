"""The outbox between the writer and the store: spool, circuit breaker, quarantine, recovery.

* :class:`CircuitBreaker`: after a store failure, stop trying the store for ``probe_interval``
  seconds; the first caller after that probes it (one prober at a time).
* :class:`Outbox`: executes a plan now, or spools it (``<state>/spool/``) while the store is
  down; flushes the spool oldest first when the store answers. A spool entry that can never be
  written (damaged on disk, or conflicting with what the archive holds) is moved to
  ``<state>/spool/quarantine/`` and its dedup verdict handed to ``forgotten`` so that the
  dedup state stops claiming the document (the next crawl fetches it again).
* :class:`WorkDir` and :func:`recover_orphans`: a writer's locked work directory (WARC segments,
  manifest journal) and the recovery of those a crashed process left behind.

There is no retry loop here: the store's client retries transient errors (stores.py); the
outbox only decides what to do once the store has given up.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler.archive import layout
from crawler.archive.archive import IMMUTABLE, CorruptDataError, ObjectConflictError
from crawler.archive.executor import Executed, Executor
from crawler.archive.operations import AppendManifest, Plan, PutObject
from crawler.archive.spool import Spool
from crawler.archive.stores import ArchiveConfigError, ArchiveError, StoreError, hash_data

logger = logging.getLogger(__name__)


class SpoolFullError(ArchiveError):
    """The store failed and the spool could not take the write either (e.g. disk full)."""


class CircuitBreaker:
    """Tracks whether the store is up; ``probe`` raises :class:`ArchiveError` while it is down."""

    def __init__(self, probe: Callable[[], None], probe_interval: float):
        self.probe, self.probe_interval = probe, float(probe_interval)
        self._lock = threading.Lock()
        self.up = True
        self._next_probe = 0.0

    def trip(self) -> bool:
        """Mark the store down; return whether it was up until now."""
        with self._lock:
            was_up, self.up = self.up, False
            self._next_probe = time.monotonic() + self.probe_interval
            return was_up

    def probe_now(self) -> None:
        """Let the next :meth:`allows` probe the store whatever the interval."""
        with self._lock:
            self._next_probe = 0.0

    def allows(self) -> tuple[bool, bool]:
        """``(store usable, it just came back)``; probes the store when a probe is due."""
        with self._lock:
            if self.up:
                return True, False
            if time.monotonic() < self._next_probe:
                return False, False
            self._next_probe = time.monotonic() + self.probe_interval  # one prober at a time
        try:
            self.probe()
        except ArchiveError:
            return False, False
        with self._lock:
            self.up = True
        return True, True


class Outbox:
    """Executes plans through ``executor`` or spools them; ``on_executed`` gets each result."""

    def __init__(self, executor: Executor, spool: Spool, *, probe_interval: float = 15.0,
                 on_executed: Callable[[Plan, Executed], None] | None = None):
        self.executor, self.spool = executor, spool
        self.archive = executor.archive
        self.breaker = CircuitBreaker(self.archive.ping, probe_interval)
        self.on_executed = on_executed
        self.stats: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._flush_lock = threading.RLock()
        #: Dedup verdicts of quarantined entries, for the caller to undo in the dedup state.
        self.forgotten: list[dict[str, Any]] = []

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    # -- store health ----------------------------------------------------------------------
    def check(self) -> None:
        """Ping the store: a bad URI or bucket raises, an outage marks the store down."""
        try:
            self.archive.ping()
        except ArchiveConfigError:
            raise
        except StoreError as exc:
            self._down(exc)

    def _down(self, exc: Exception) -> None:
        self._count("store_errors")
        if self.breaker.trip():
            logger.warning("archive store unavailable, spooling to %s: %s", self.spool.dir, exc)

    def available(self) -> bool:
        usable, came_back = self.breaker.allows()
        if came_back:
            logger.info("archive store answers again; flushing the spool")
            self.flush()
            return self.breaker.up
        return usable

    @property
    def up(self) -> bool:
        return self.breaker.up

    # -- plans -----------------------------------------------------------------------------
    def submit(self, plan: Plan) -> Executed | None:
        """Execute ``plan`` now (``Executed``) or spool it (``None``); raise
        :class:`SpoolFullError` if neither the store nor the spool can take it."""
        error: Exception | None = None
        if self.available():
            try:
                done = self._execute(plan)
            except ObjectConflictError as exc:
                logger.error("archive: %s; kept in the spool", exc)
                self._count("conflicts")
                error = exc
            except StoreError as exc:
                self._down(exc)
                error = exc
            else:
                for blob in plan.blobs:
                    if isinstance(blob, Path):
                        blob.unlink(missing_ok=True)
                return done
        try:
            self.spool.add(plan)
        except OSError as exc:
            self._count("spool_errors")
            what = ", ".join(plan.urls()) or (plan.entry or {}).get("kind") or "a write"
            raise SpoolFullError(
                f"cannot spool {what} to {self.spool.dir} ({exc.strerror or exc}) after the "
                f"store failed ({error}); free space there, it is fetched again next crawl"
            ) from exc
        self._count("spooled")
        return None

    def _execute(self, plan: Plan) -> Executed:
        done = self.executor.execute(plan)
        written = [r for r in done.results if r.written]
        with self._lock:
            self.stats["objects"] += len(written)
            self.stats["bytes"] += sum(r.size for r in written)
            self.stats["existing"] += len(done.results) - len(written)
        if self.on_executed is not None:
            self.on_executed(plan, done)
        return done

    def flush(self) -> int:
        """Upload spooled entries for this archive, oldest first; return how many were sent."""
        sent = 0
        with self._flush_lock, self.spool.locked():
            for entry in self.spool.ids(self.archive.uri):
                try:
                    plan = self.spool.load(entry)
                except FileNotFoundError:
                    continue  # removed by another flusher meanwhile
                except (OSError, ValueError, ArchiveError) as exc:
                    self.quarantine(entry, None, f"unreadable: {exc}")
                    continue
                try:
                    self._execute(plan)
                except CorruptDataError as exc:
                    self.quarantine(entry, plan, str(exc))
                    continue
                except ObjectConflictError as exc:
                    self._count("conflicts")
                    self.quarantine(entry, plan, str(exc))
                    continue
                except StoreError as exc:
                    self._down(exc)
                    break
                self.spool.remove(entry)
                sent += 1
        self._count("flushed", sent)
        return sent

    def quarantine(self, entry: str, plan: Plan | None, reason: str) -> None:
        """Set a spool entry that can never be written aside and forget its dedup verdict."""
        where = self.spool.quarantine(entry, reason)
        self._count("quarantined")
        urls = ", ".join(plan.urls()) if plan else "?"
        entry = (plan.entry or {}) if plan is not None else {}
        verdict = dict(plan.dedup) if plan is not None and plan.dedup else (
            {"kind": entry["kind"], "url": entry.get("url"), "final_url": entry.get("final_url")}
            if entry.get("kind") == "attachment" else None)  # an attachment: forget its URL
        if verdict is not None:
            with self._lock:
                self.forgotten.append(verdict)
            logger.error("archive: spool entry %s (%s) cannot be written: %s; moved to %s, its "
                         "document is fetched again by the next crawl", entry, urls, reason,
                         where)
        else:
            logger.error("archive: spool entry %s (%s) cannot be written: %s; moved to %s",
                         entry, urls, reason, where)

    def take_forgotten(self) -> list[dict[str, Any]]:
        with self._lock:
            done, self.forgotten = self.forgotten, []
            return done


# --- work directories and crash recovery ----------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class WorkDir:
    """``<state>/archive-work/<id>/``: a live writer's WARC segments and manifest journal.

    Held under an exclusive ``flock`` until :meth:`remove`, so that :func:`recover_orphans` can
    tell a crashed writer's leftovers from a live one's. ``crawl.json`` is written atomically.
    """

    def __init__(self, base: Path, crawl_id: str, archive_uri: str):
        self.base = Path(base)
        self.path = self.base / uuid.uuid4().hex[:16]
        self.path.mkdir(parents=True)
        self._lockfile = open(self.path / ".lock", "a")  # noqa: SIM115 - held until remove()
        # Blocking: another writer's orphan sweep may hold it for a moment.
        fcntl.flock(self._lockfile, fcntl.LOCK_EX)
        _write_atomic(self.path / "crawl.json",
                      json.dumps({"crawl_id": crawl_id, "archive": archive_uri}).encode())
        self.journal_path = self.path / "journal.jsonl"
        self.journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115

    @property
    def warc_dir(self) -> Path:
        return self.path / "warc"

    def release(self) -> None:
        """Close files and drop the lock (what a crashed process leaves)."""
        self.journal.close()
        self._lockfile.close()

    def remove(self) -> None:
        self.journal.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._lockfile.close()


def split_journal(journal: Path, default_crawl: str, into: Path) -> dict[str, Path]:
    """Stream a writer's journal into one JSON-lines file per crawl id, in ``into``; a torn last
    line (a crash mid-write) is dropped. Lines are copied as written, never held in memory.
    A missing journal (a writer killed before its first line) gives no files."""
    out: dict[str, Path] = {}
    handles: dict[str, Any] = {}
    try:
        source = open(journal, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return out
    try:
        for raw in source:
            try:
                crawl = json.loads(raw).get("crawl_id") or default_crawl
            except ValueError:
                break
            if crawl not in handles:
                out[crawl] = into / f"manifest-{layout.sha256_hex(crawl.encode())[:16]}.jsonl"
                handles[crawl] = open(out[crawl], "wb")  # noqa: SIM115 - closed below
            handles[crawl].write(raw if raw.endswith(b"\n") else raw + b"\n")
    finally:
        source.close()
        for handle in handles.values():
            handle.close()
    return out


def segment_plan(archive_uri: str, crawl_id: str, key: str, path: Path,
                 recovered: bool = False) -> Plan:
    """The plan uploading one WARC segment file (hashed while streamed, not loaded)."""
    sha, _, _ = hash_data(path)
    entry: dict[str, Any] = {"crawl_id": crawl_id, "kind": "warc"}
    if recovered:
        entry["recovered"] = True
    return Plan(archive_uri, crawl_id, [PutObject(key, 0, sha, "application/warc", IMMUTABLE)],
                [path], entry)


def manifest_plan(archive_uri: str, crawl_id: str, lines: Path) -> Plan:
    return Plan(archive_uri, crawl_id, [AppendManifest(crawl_id, 0)], [lines])


_CLAIMED = ".recovering-"


def recover_orphans(base: Path, spool: Spool, exclude: Path | None = None) -> int:
    """Spool what crashed writers left in ``base`` (WARC segments, manifest lines); return how
    many directories were recovered. Safe against concurrent sweeps by other writers (of this
    process or another): a directory is claimed by renaming it while holding its lock, so one
    sweeper recovers it and the others skip it. A failure on one directory is logged, never
    raised, and leaves that directory for the next run."""
    if not base.is_dir():
        return 0
    recovered = 0
    for work in sorted(p for p in base.iterdir() if p.is_dir() and p != exclude and (
            not p.name.startswith(".") or p.name.startswith(_CLAIMED))):
        try:
            recovered += _recover_dir(base, work, spool)
        except OSError as exc:
            logger.warning("archive: could not recover %s now (%s); the next run tries again",
                           work, exc.strerror or exc)
    return recovered


def _recover_dir(base: Path, work: Path, spool: Spool) -> int:
    try:
        fh = open(work / ".lock", "r+")  # noqa: SIM115 - never create it in a vanishing dir
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            # No lock file: a writer between mkdir and lock, (old) a torn setup, or a directory
            # another sweeper has just claimed.
            try:
                if time.time() - work.stat().st_mtime > 3600:
                    shutil.rmtree(work, ignore_errors=True)
            except FileNotFoundError:
                pass
            return 0
        raise
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # a live writer, or another sweeper at work
        if not work.exists():
            return 0  # another sweeper recovered it while we were opening its lock
        if not (work / "crawl.json").exists() and time.time() - work.stat().st_mtime < 3600:
            return 0  # a writer still setting up (it locks right after mkdir)
        if work.name.startswith(_CLAIMED):
            claimed = work  # a sweep that stopped half-way: its lock is free again
            if not claimed.exists():
                return 0
        else:
            claimed = base / f"{_CLAIMED}{work.name}"
            try:
                os.rename(work, claimed)
            except FileNotFoundError:
                return 0  # another sweeper claimed it first
        try:
            info = json.loads((claimed / "crawl.json").read_text("utf-8"))
        except (OSError, ValueError):
            info = {}
        crawl_id, uri = info.get("crawl_id"), info.get("archive")
        if not (crawl_id and uri):
            if any(claimed.rglob("*.warc.gz")) or (claimed / "journal.jsonl").is_file():
                aside = spool.dir / "quarantine" / f"work-{work.name}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(claimed, aside)
                logger.error("archive: interrupted work directory %s names no crawl; moved to "
                             "%s", work, aside)
            else:
                shutil.rmtree(claimed, ignore_errors=True)
            return 0
        for seg in sorted((claimed / "warc").glob("*.warc.gz")):
            key = f"{layout.crawl_prefix(crawl_id)}/warc/{seg.name}"
            spool.add(segment_plan(uri, crawl_id, key, seg, recovered=True))
        for part_crawl, path in split_journal(claimed / "journal.jsonl", crawl_id,
                                              claimed).items():
            spool.add(manifest_plan(uri, part_crawl, path))
        shutil.rmtree(claimed, ignore_errors=True)
    logger.warning("archive: recovered an interrupted crawl %s into the spool", crawl_id)
    return 1
