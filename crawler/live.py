"""A live progress display on a terminal: one row per site, redrawn in place (plain ANSI)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

COLUMNS = ("site", "pages", "new", "duplicate", "changed", "errors", "queue")


def row(name: str, stats: dict[str, Any], queue: int) -> list[str]:
    def get(key: str) -> int:
        return int(stats.get(key, 0) or 0)

    dupes = get("govcrawl/dedup/duplicate") + get("govcrawl/dedup/near_duplicate")
    return [name, str(get("downloader/response_count")), str(get("govcrawl/dedup/new")),
            str(dupes), str(get("govcrawl/dedup/changed")), str(get("log_count/ERROR")), str(queue)]


def render(rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(COLUMNS)]
    return ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            for cells in [list(COLUMNS), *rows]]


class LiveDisplay:
    """Redraws the rows of ``crawlers`` every ``interval`` seconds while the reactor runs."""

    def __init__(self, crawlers: list[tuple[str, Any]], out: TextIO | None = None,
                 interval: float = 0.5):
        self.crawlers = crawlers
        self.out = out or sys.stderr
        self.interval = interval
        self._drawn = 0
        self._loop: Any = None

    def rows(self) -> list[list[str]]:
        result = []
        for name, crawler in self.crawlers:
            stats = crawler.stats.get_stats() if crawler.stats else {}
            queue = 0
            engine = getattr(crawler, "engine", None)
            slot = getattr(engine, "_slot", None) if engine else None
            scheduler = getattr(slot, "scheduler", None) if slot else None
            if scheduler is not None:
                try:
                    queue = len(scheduler)
                except TypeError:
                    queue = 0
            result.append(row(name, stats, queue))
        return result

    def draw(self) -> None:
        lines = render(self.rows())
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        self.out.write("".join(line + "\x1b[K\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)

    def start(self) -> None:
        from twisted.internet import task

        self._loop = task.LoopingCall(self.draw)
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.draw()
