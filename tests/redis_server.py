"""A real ``redis-server`` (the system package) on a free 127.0.0.1 port, for the tests.

``RedisServer(dir).start()`` runs it with its data in ``dir`` (``appendonly=True``: AOF, fsync
on every write, so a restart keeps everything); ``stop()`` ends it (``SHUTDOWN NOSAVE``, then
terminate); ``restart()`` stops it and starts it again on the same port and data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process (see the module docstring)."""

    def __init__(self, data_dir: Path, appendonly: bool = False, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", "", "--daemonize", "no",
                "--protected-mode", "yes", "--logfile", str(self.data_dir / "redis.log")]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            for _ in range(200):  # bounded: 20 s
                if self.proc.poll() is not None:
                    log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited {self.proc.returncode}: {log}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.1)
            raise RuntimeError("redis-server did not answer in 20 s")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        try:
            client = redis.Redis(port=self.port, socket_timeout=5)
            client.shutdown(nosave=not self.appendonly)
        except redis.RedisError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)
