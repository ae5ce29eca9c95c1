"""Fault suite (issue 15, case 9c): a spool entry found damaged is set aside, and its document's
dedup verdict is undone, so that the next crawl fetches the document again (none is lost).

| fault | user sees | way out |
|---|---|---|
| spooled document damaged on disk | an error log line; the document is fetched again | - |
"""

from __future__ import annotations

import json

from crawler.archive.spool import Spool
from tests.faults.test_archive_store_faults import (  # noqa: F401 (fixtures)
    ACCESS_DENIED,
    assert_complete_once,
    s3_env,
    s3_server,
    store,
)


def test_damaged_spool_entry_is_fetched_again(store):  # noqa: F811
    store.proxy.fault = lambda method, path: ACCESS_DENIED if method == "PUT" else None
    down = store.crawl()
    assert down.returncode == 1  # the writes are kept in the spool
    spool = Spool(store.state / "spool")
    articles = [e for e in spool.ids() if (spool.load(e).entry or {}).get("kind") == "article"]
    assert len(articles) == 2
    damaged = spool.dir / articles[0] / "blob-0"  # the document's text
    damaged.write_bytes(damaged.read_bytes() + "篡改".encode())
    url = json.loads((spool.dir / articles[0] / "plan.json").read_text("utf-8"))["entry"]["url"]

    store.proxy.fault = None  # the store is back: the next crawl flushes the spool
    again = store.crawl()
    assert again.returncode == 0, again.stderr[-2000:]
    assert spool.quarantined() == [articles[0]]
    # the document of the damaged entry was fetched again and stored once; nothing is lost
    assert ("article", url) in store.stored()
    assert_complete_once(store)
