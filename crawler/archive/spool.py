"""Local spool of archive writes that the store could not take (``<GOVCRAWL_STATE_DIR>/spool/``).

Each entry is a directory ``<time>-<id>/`` holding ``plan.json`` (what to write, for which archive)
and its blobs; it appears atomically (written under a temporary name, then renamed) and is removed
once uploaded. Entries are replayed oldest first; replays are idempotent. An entry that can
never be written (damaged, conflicting) is moved to ``quarantine/`` by the outbox.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from crawler.archive.operations import Blob, Plan

_ENTRY = re.compile(r"^\d{20}-[0-9a-f]{12}$")
QUARANTINE = "quarantine"


class Spool:
    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)

    def add(self, plan: Plan) -> str:
        """Store a plan and its blobs; ``Path`` blobs are moved into the spool. On failure
        (e.g. the disk is full) nothing is left behind and moved blobs are put back."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entry = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        tmp = self.dir / f".tmp-{entry}"
        moved: list[tuple[Path, Path]] = []
        try:
            tmp.mkdir()
            for i, blob in enumerate(plan.blobs):
                target = tmp / f"blob-{i}"
                if isinstance(blob, bytes):
                    target.write_bytes(blob)
                else:
                    shutil.move(blob, target)
                    moved.append((target, Path(blob)))
            (tmp / "plan.json").write_text(json.dumps(plan.to_json(), ensure_ascii=False),
                                           encoding="utf-8")
            os.replace(tmp, self.dir / entry)
        except BaseException:
            for target, origin in moved:
                with contextlib.suppress(OSError):
                    shutil.move(target, origin)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return entry

    def ids(self, archive_uri: str | None = None) -> list[str]:
        if not self.dir.is_dir():
            return []
        found = sorted(p.name for p in self.dir.iterdir() if p.is_dir() and _ENTRY.match(p.name))
        if archive_uri is None:
            return found
        return [e for e in found if self._archive_of(e) in (archive_uri, None)]

    def _archive_of(self, entry: str) -> str | None:
        """The archive an entry is for (None if its plan cannot be read: flush quarantines it)."""
        try:
            return json.loads((self.dir / entry / "plan.json").read_text("utf-8")).get("archive")
        except (OSError, ValueError, AttributeError):
            return None

    def load(self, entry: str) -> Plan:
        """The plan of ``entry`` with its blobs as paths; ``ValueError`` or
        :class:`ArchiveError` if it is damaged, ``FileNotFoundError`` if it is gone."""
        base = self.dir / entry
        data = json.loads((base / "plan.json").read_text("utf-8"))
        nblobs = int(data.get("nblobs", 0)) if isinstance(data, dict) else 0
        blobs: list[Blob] = [base / f"blob-{i}" for i in range(nblobs)]
        for blob in blobs:
            if not Path(blob).is_file():
                raise ValueError(f"{Path(blob).name} is missing")
        return Plan.from_json(data, blobs)

    def remove(self, entry: str) -> None:
        shutil.rmtree(self.dir / entry, ignore_errors=True)

    def quarantine(self, entry: str, reason: str) -> Path:
        """Move ``entry`` to ``quarantine/`` with a ``reason.txt``; return where it went."""
        target = self.dir / QUARANTINE / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.dir / entry, target)
        (target / "reason.txt").write_text(reason + "\n", encoding="utf-8")
        return target

    def quarantined(self) -> list[str]:
        base = self.dir / QUARANTINE
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def bytes(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool's lock (one flusher at a time, across processes)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
