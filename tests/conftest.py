"""Shared test helpers: paths to the bundled real pages, and running the CLI in a subprocess.

Scrapy's Twisted reactor cannot be restarted inside one process, so tests that crawl run
``govcrawl`` (``python -m crawler.cli``) in a child process, exactly as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
SEEDS = REPO / "tests" / "seeds"
CLEANING_CASES = REPO / "tests" / "cleaning-cases" / "cases.jsonl"
CASSETTES = REPO / "cassettes"


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_govcrawl(*args: str, cwd: Path | None = None, env: dict | None = None,
                 timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``govcrawl ARGS`` in a child process and return the finished process (text mode)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"govcrawl {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a thread; yields the base URL, then stops."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def govcrawl():
    """The CLI runner, as a fixture."""
    return run_govcrawl
