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
import uuid
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


def static_site(files: dict[str, tuple[bytes, str]]) -> type[BaseHTTPRequestHandler]:
    """A handler serving ``files`` (path -> (body, content type)); 404 for any other path."""

    class StaticSite(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path not in files:
                self.send_response(404)
                self.end_headers()
                return
            body, ctype = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return StaticSite


@pytest.fixture
def govcrawl():
    """The CLI runner, as a fixture."""
    return run_govcrawl


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free 127.0.0.1 port for the whole session, stopped at the end."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_aof(tmp_path):
    """A redis-server of this test's own with AOF persistence (restartable on its data dir)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


class StateBackend:
    """Where a test's dedup states live: SQLite files in its tmp_path, or key prefixes of its
    own in the session's redis-server. ``uri(name)`` names one state; ``open(name)`` opens it."""

    def __init__(self, kind: str, tmp_path: Path, redis_url: str = "", tag: str = ""):
        self.kind, self.tmp_path, self.redis_url, self.tag = kind, tmp_path, redis_url, tag

    def uri(self, name: str = "dedup") -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path}/{name}.sqlite"
        return f"{self.redis_url}?prefix={self.tag}:{name}:"

    def settings(self, name: str = "dedup") -> dict[str, str]:
        return {"GOVCRAWL_DEDUP_STATE": self.uri(name)}

    def open(self, name: str = "dedup"):
        """A new instance of the state (as another process would open it)."""
        from crawler.dedup.redis_state import RedisDedupState
        from crawler.dedup.sqlite import SQLiteDedupState

        cls = SQLiteDedupState if self.kind == "sqlite" else RedisDedupState
        return cls.from_uri(self.uri(name))


@pytest.fixture(params=["sqlite", "redis"])
def state_backend(request, tmp_path) -> StateBackend:
    """Each dedup state test runs on both backends (same test, same assertions)."""
    if request.param == "sqlite":
        return StateBackend("sqlite", tmp_path)
    server = request.getfixturevalue("redis_server")
    return StateBackend("redis", tmp_path, server.url, f"t-{uuid.uuid4().hex}")
