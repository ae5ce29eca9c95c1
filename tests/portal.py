"""A generated TRS-style portal on a local threaded HTTP server (127.0.0.1), for scale tests.

Pages come from :class:`benchmarks.crawl_throughput.Site`: articles built from real corpus page
templates (tests/corpus/pages) with their body refilled from the seed reports, list pages
``/xxgk/index.html``, ``index_1.html``, ... paged by ``createPageHTML``. The server counts how often
each article was served and records, per ``Host``, the peak number of requests it was answering
at once (each answer takes ``latency`` seconds, so requests that overlap are seen to).

``Portal.profile(path)`` writes the site profile for it (docs/adding-a-site.md); point
``GOVCRAWL_PROFILES`` at that file.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.crawl_throughput import Site, write_profile

ARTICLE = re.compile(r"^/xxgk/\d{6}/t\d{8}_(\d+)\.html$")
LIST = re.compile(r"^/xxgk/index(?:_(\d+))?\.html$")
ROBOTS = b"User-agent: *\nDisallow: /private/\n"



class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A crawler killed mid-request resets its connections: that is the test, not news."""


class Portal:
    """``with Portal(2000) as portal:`` ... ``portal.base`` (see the module docstring)."""

    def __init__(self, n_articles: int, latency: float = 0.01, duplicates: bool = False):
        self.site = Site(n_articles, duplicates=duplicates)
        self.latency = latency
        self.served: Counter[int] = Counter()  # article number -> times served
        self.active: Counter[str] = Counter()  # Host -> requests being answered now
        self.peak: Counter[str] = Counter()  # Host -> most answered at once
        self._lock = threading.Lock()
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                host = self.headers.get("Host", "")
                with portal._lock:
                    portal.active[host] += 1
                    portal.peak[host] = max(portal.peak[host], portal.active[host])
                try:
                    time.sleep(portal.latency)
                    status, body, kind = portal.answer(self.path)
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with portal._lock:
                        portal.active[host] -= 1

        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, bytes, str]:
        html = "text/html; charset=utf-8"
        if match := ARTICLE.match(path):
            number = int(match.group(1)) - 1_000_000
            if 0 <= number < self.site.n_pages:
                with self._lock:
                    self.served[number] += 1
                return 200, self.site.article(number), html
        elif match := LIST.match(path):
            page = int(match.group(1) or 0)
            if page < self.site.n_lists:
                return 200, self.site.list_page(page), html
        elif path == "/robots.txt":
            return 200, ROBOTS, "text/plain"
        return 404, b"not found", "text/plain"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def articles_served(self) -> int:
        """Distinct articles served at least once."""
        return len(self.served)

    def article_url(self, number: int) -> str:
        return self.base + self.site.article_url_path(number)

    def profile(self, path: Path, name: str = "portal") -> Path:
        return write_profile(self.base, self.site.n_pages, path, name)

    def __enter__(self) -> Portal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
