"""``govcrawl archive export-wacz``: the WACZ passes ``wacz validate`` and replays in pywb.

The archive is the offline crawl of the bundled cassettes plus a second liuzhi crawl with an edited
article (tests/crawled_archive.py); pywb's ``wayback`` runs on a free 127.0.0.1 port, stopped after.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tests.crawled_archive import (
    LIUZHI_TITLE,
    LIUZHI_URL,
    NEW_FIGURE,
    OLD_FIGURE,
    crawled,  # noqa: F401 (fixture)
    free_port,
)

#: pywb pins redis 2.10 and fakeredis < 1 (govcrawl needs redis >= 5): scripts/bootstrap.sh --test
#: installs it in its own virtualenv beside the project's, ``.venv-pywb``.
PYWB_BIN = Path(sys.prefix).parent / ".venv-pywb" / "bin"
BIN = Path(sys.executable).parent


def tool(name: str, *args: str, cwd: Path, bin_dir: Path = BIN) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / name), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def pages_of(wacz: Path) -> list[dict]:
    with zipfile.ZipFile(wacz) as z:
        return [json.loads(line) for line in z.read("pages/pages.jsonl").splitlines() if line]


def test_export_validates_and_lists_the_documents(crawled, tmp_path, govcrawl):  # noqa: F811
    out = tmp_path / "liuzhi.wacz"
    proc = govcrawl("archive", "export-wacz", "--site", "liuzhi", str(out), *crawled.args())
    assert proc.returncode == 0, proc.stderr
    assert "2 pages" in proc.stdout
    check = tool("wacz", "validate", "-f", str(out), cwd=tmp_path)
    assert check.returncode == 0 and "Validation succeeded" in check.stdout, check.stdout
    header, *pages = pages_of(out)
    assert header["format"] == "json-pages-1.0"
    assert [p["url"] for p in pages] == [LIUZHI_URL, LIUZHI_URL]  # two crawls, two captures
    assert {p["title"] for p in pages} == {LIUZHI_TITLE}
    with zipfile.ZipFile(out) as z:
        warcs = [n for n in z.namelist() if n.startswith("archive/")]
    assert len(warcs) == 2 and all(n.endswith(".warc.gz") for n in warcs)

    # one crawl: only its records; the whole archive: every crawl's documents
    crawl_id = sorted(p.name for p in (crawled.archive / "crawls").iterdir()
                      if p.name.endswith("-atxlyj"))[0]
    one = tmp_path / "one.wacz"
    assert govcrawl("archive", "export-wacz", "--crawl", crawl_id, str(one),
                    *crawled.args()).returncode == 0
    assert len(pages_of(one)) == 1 + 2  # header + atxlyj's two documents
    for args, message in [(["--crawl", "nope", str(tmp_path / "x.wacz")], "no crawl 'nope'"),
                          (["--site", "nope", str(tmp_path / "x.wacz")], "no crawl of site"),
                          (["--site", "liuzhi", str(tmp_path / "x.zip")], "must be a .wacz")]:
        proc = govcrawl("archive", "export-wacz", *args, *crawled.args())
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_pages_replay_in_pywb(crawled, tmp_path, govcrawl):  # noqa: F811
    out = tmp_path / "liuzhi.wacz"
    assert govcrawl("archive", "export-wacz", "--site", "liuzhi", str(out),
                    *crawled.args()).returncode == 0
    assert tool("wb-manager", "init", "gov", cwd=tmp_path, bin_dir=PYWB_BIN).returncode == 0
    added = tool("wb-manager", "add", "--unpack-wacz", "gov", str(out), cwd=tmp_path,
                 bin_dir=PYWB_BIN)
    assert added.returncode == 0, added.stderr
    port = free_port()
    proc = subprocess.Popen([str(PYWB_BIN / "wayback"), "-p", str(port), "-b", "127.0.0.1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ})
    base = f"http://127.0.0.1:{port}/gov"
    try:
        for _ in range(150):  # bounded: 30 s
            try:
                if fetch(f"{base}/cdx?url={LIUZHI_URL}")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("pywb did not start in 30 s")
        ts = [re.sub(r"\D", "", p["ts"]) for p in pages_of(out)[1:]]
        assert len(ts) == 2 and ts[0] < ts[1]
        # the raw capture of each crawl (id_: the archived bytes, not rewritten)
        status, old = fetch(f"{base}/{ts[0]}id_/{LIUZHI_URL}")
        assert status == 200 and OLD_FIGURE in old.decode("utf-8")
        status, new = fetch(f"{base}/{ts[1]}id_/{LIUZHI_URL}")
        assert status == 200 and NEW_FIGURE in new.decode("utf-8")
        # and the page replayed as a visitor sees it (pywb's rewriting frame)
        status, replay = fetch(f"{base}/{ts[1]}mp_/{LIUZHI_URL}")
        assert status == 200 and LIUZHI_TITLE in replay.decode("utf-8")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
