"""A real S3 endpoint for tests: moto's standalone server over HTTP on 127.0.0.1.

Use the fixtures from a test module with ``from tests.s3server import s3_server, s3_bucket``.
``S3Server.env`` holds the environment a child process needs (fake credentials + endpoint).
Fake credentials are set in ``os.environ`` for the session and restored afterwards.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    """moto's ThreadedMotoServer on 127.0.0.1; ``stop()`` and ``start()`` keep the port and, since
    moto's backends live in this process, the buckets and objects."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._cls = ThreadedMotoServer
        self.port = port
        self._server = None
        self.start()

    def start(self) -> None:
        assert self._server is None, "already running"
        self._server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**FAKE_ENV, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 1}))

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    """Fake AWS credentials in os.environ for the session (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in [*FAKE_ENV, "AWS_PROFILE", "AWS_ENDPOINT_URL"]}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(FAKE_ENV)
    yield dict(FAKE_ENV)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def s3_server(s3_env) -> Iterator[S3Server]:
    """One S3 server for the session (do not stop it; use ``s3_server_private`` for that)."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_server_private(s3_env) -> Iterator[S3Server]:
    """An S3 server of one's own, free to be stopped and restarted by the test."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the session's server."""
    return s3_server.create_bucket()
