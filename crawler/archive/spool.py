"""Local spool of archive writes that the store could not take (``<GOVCRAWL_STATE_DIR>/spool/``).

Each entry is a directory ``<time>-<id>/`` holding ``plan.json`` (what to write, for which archive)
and its blobs; it appears atomically (written under a temporary name, then renamed) and is removed
once uploaded. Entries are replayed oldest first; replays are idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Blob = bytes | Path


class Spool:
    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)

    def add(self, plan: dict[str, Any], blobs: list[Blob]) -> str:
        """Store a plan and its blobs; ``Path`` blobs are moved into the spool."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entry = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        tmp = self.dir / f".tmp-{entry}"
        tmp.mkdir()
        for i, blob in enumerate(blobs):
            target = tmp / f"blob-{i}"
            if isinstance(blob, bytes):
                target.write_bytes(blob)
            else:
                shutil.move(blob, target)
        (tmp / "plan.json").write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.dir / entry)
        return entry

    def ids(self, archive_uri: str | None = None) -> list[str]:
        if not self.dir.is_dir():
            return []
        found = sorted(p.name for p in self.dir.iterdir()
                       if p.is_dir() and not p.name.startswith("."))
        if archive_uri is None:
            return found
        return [e for e in found if self._archive_of(e) == archive_uri]

    def _archive_of(self, entry: str) -> str | None:
        try:
            return json.loads((self.dir / entry / "plan.json").read_text("utf-8")).get("archive")
        except (OSError, ValueError):
            return None

    def load(self, entry: str) -> tuple[dict[str, Any], list[Path]]:
        base = self.dir / entry
        plan = json.loads((base / "plan.json").read_text("utf-8"))
        return plan, [base / f"blob-{i}" for i in range(plan.get("nblobs", 0))]

    def remove(self, entry: str) -> None:
        shutil.rmtree(self.dir / entry, ignore_errors=True)

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
