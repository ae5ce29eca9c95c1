"""The Datasette plugin behind ``govcrawl serve``: search, document, attachment and site pages.

Archived content is hostile (spam injections are why this product exists): every value goes
through Jinja's autoescaping, archived HTML is never rendered (raw captures are served as
``text/plain`` under a sandboxing CSP, attachments as downloads), ids are checked against a strict
pattern and looked up in the index (never used to build a path), our pages carry a CSP without
scripts, and only GET/HEAD reach the app (no write endpoints; arbitrary SQL is denied).
"""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response

from crawler.archive.archive import Archive
from crawler.index.build import LINKED_ATTACHMENTS, LINKED_SHA
from crawler.index.search import FACETS, search
from crawler.serve.records import read_capture

DOC_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SITE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._:-]{0,199}$")
PAGE_SIZE = 20
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SAFE_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                "x-frame-options": "DENY"}
META_FIELDS = [("title", "标题"), ("published", "发布日期"), ("written", "成文日期"),
               ("source", "来源"), ("publisher", "发布机构"), ("index_no", "索引号"),
               ("doc_no", "文号"), ("topic", "主题分类")]


class BadId(NotFound):
    """An id that is not an id (path tricks, odd characters): 404, never a lookup."""


def _checked(value: str, pattern: re.Pattern[str]) -> str:
    value = unquote(value)
    if not pattern.match(value) or ".." in value:
        raise BadId("not found")
    return value


def _html(body: str, status: int = 200) -> Response:
    return Response.html(body, status=status, headers={"content-security-policy": CSP})


def line_diff(old: str, new: str, context: int = 2) -> list[dict[str, Any]]:
    """Rows ``{tag, old, new}`` of a line diff (tag: equal/delete/insert/skip; a replaced line is
    a delete then an insert), long unchanged runs shortened to ``context`` lines each side."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            run = a[i1:i2]
            if len(run) > 2 * context + 1:
                rows += [{"tag": "equal", "text": t} for t in run[:context]]
                rows.append({"tag": "skip", "text": f"… {len(run) - 2 * context} unchanged lines"})
                rows += [{"tag": "equal", "text": t} for t in run[-context:]]
            else:
                rows += [{"tag": "equal", "text": t} for t in run]
            continue
        rows += [{"tag": "delete", "text": t} for t in a[i1:i2]]
        rows += [{"tag": "insert", "text": t} for t in b[j1:j2]]
    return rows


def _json(value: str | None, default: Any) -> Any:
    try:
        return json.loads(value) if value else default
    except ValueError:
        return default


class GovcrawlPlugin:
    """Registered on Datasette's plugin manager by :func:`crawler.serve.app.make_app`."""

    def __init__(self, archive: Archive | None, database: str):
        self.archive, self.database = archive, database
        self.__name__ = "crawler.serve"  # Datasette names plugins (and finds templates) by this

    # -- hooks -----------------------------------------------------------------------------
    @hookimpl
    def permission_allowed(self, actor: Any, action: str) -> bool | None:
        if action in ("execute-sql", "debug-menu", "permissions-debug"):
            return False
        return None

    @hookimpl
    def handle_exception(self, datasette: Any, request: Any, exception: Exception) -> Any:
        """Plain error pages: the status and a short reason, never a traceback or locals."""
        status = getattr(exception, "status", 500)  # Base400, DatasetteError carry theirs
        if not isinstance(status, int) or not 400 <= status <= 599:
            status = 500
        reason = {400: "bad request", 403: "forbidden", 404: "not found",
                  405: "method not allowed"}.get(status, "internal error")

        async def page() -> Response:
            body = await datasette.render_template(
                "govcrawl_error.html", {"dbname": self.database, "status": status,
                                        "reason": reason}, request=request)
            return _html(body, status)
        return page

    @hookimpl
    def asgi_wrapper(self, datasette: Any) -> Any:
        def wrap(app: Any) -> Any:
            async def guarded(scope: dict, receive: Any, send: Any) -> None:
                if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD"):
                    await Response.text("read-only", status=405,
                                        headers={"allow": "GET, HEAD"}).asgi_send(send)
                    return

                async def send_with_headers(message: dict) -> None:
                    if message["type"] == "http.response.start":
                        names = {k.lower() for k, _ in message.get("headers", [])}
                        extra = [(k.encode(), v.encode()) for k, v in SAFE_HEADERS.items()
                                 if k.encode() not in names]
                        message = {**message, "headers": [*message.get("headers", []), *extra]}
                    await send(message)

                await app(scope, receive, send_with_headers)
            return guarded
        return wrap

    @hookimpl
    def register_routes(self) -> list[tuple[str, Any]]:
        return [
            (r"^/$", self.search_page),
            (r"^/-/govcrawl\.css$", self.stylesheet),
            (r"^/doc/(?P<doc_id>[^/]+)$", self.document_page),
            (r"^/doc/(?P<doc_id>[^/]+)/v(?P<version>[0-9]{1,6})/raw$", self.raw_capture),
            (r"^/attachment/(?P<sha>[^/]+)$", self.attachment_body),
            (r"^/attachment/(?P<sha>[^/]+)/text$", self.attachment_text),
            (r"^/sites$", self.sites_page),
            (r"^/site/(?P<site>[^/]+)$", self.site_page),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def db(self, datasette: Any) -> Any:
        return datasette.get_database(self.database)

    async def rows(self, datasette: Any, sql: str, params: list[Any] | None = None
                   ) -> list[dict[str, Any]]:
        result = await self.db(datasette).execute(sql, params or [])
        return [dict(r) for r in result.rows]

    async def render(self, datasette: Any, request: Any, template: str,
                     context: dict[str, Any], status: int = 200) -> Response:
        context = {"dbname": self.database, "facet_labels": {k: v[1] for k, v in FACETS.items()},
                   **context}
        return _html(await datasette.render_template(template, context, request=request), status)

    # -- pages -----------------------------------------------------------------------------
    async def stylesheet(self) -> Response:
        css = resources.files("crawler.serve").joinpath("static/govcrawl.css").read_text("utf-8")
        return Response(css, content_type="text/css; charset=utf-8",
                        headers={"cache-control": "max-age=3600"})

    async def search_page(self, datasette: Any, request: Any) -> Response:
        args = request.args
        query = (args.get("q") or "").strip()[:200]
        filters = {name: args.getlist(name) for name in FACETS if args.getlist(name)}
        since = (args.get("since") or "").strip()[:10] or None
        try:
            page = max(1, min(int(args.get("page") or 1), 500))
        except ValueError:
            page = 1

        def run(conn: sqlite3.Connection) -> Any:
            return search(conn, query, filters, since, limit=PAGE_SIZE,
                          offset=(page - 1) * PAGE_SIZE)

        try:
            result = await self.db(datasette).execute_fn(run)
        except sqlite3.OperationalError:  # a query FTS5 cannot parse
            result = None
        base = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)
                if k != "page"]

        def link(**change: Any) -> str:
            params = [(k, v) for k, v in base if k not in change]
            for k, v in change.items():
                if v is not None:
                    params.append((k, v))
            return "/?" + urlencode(params)

        def toggle(name: str, value: Any) -> str:
            value = "" if value is None else str(value)
            current = filters.get(name, [])
            params = [(k, v) for k, v in base if not (k == name and v == value)]
            if value not in current:
                params.append((name, value))
            return "/?" + urlencode(params)

        pages = (result.total + PAGE_SIZE - 1) // PAGE_SIZE if result else 0
        return await self.render(datasette, request, "govcrawl_search.html", {
            "query": query, "since": since or "", "filters": filters, "result": result,
            "page": page, "pages": pages, "link": link, "toggle": toggle,
            "clear_url": "/?" + urlencode([("q", query)] if query else []),
            "json_url": f"/{self.database}/documents.json?" + urlencode(
                [("_search", query)] if query else []),
        })

    async def document_page(self, datasette: Any, request: Any) -> Response:
        doc_id = _checked(request.url_vars["doc_id"], DOC_ID)
        found = await self.rows(datasette, "SELECT * FROM documents WHERE doc_id = ?", [doc_id])
        if not found:
            alias = await self.rows(datasette, "SELECT canonical_id FROM aliases WHERE doc_id = ?",
                                    [doc_id])
            if alias:
                return Response.redirect(f"/doc/{quote(alias[0]['canonical_id'])}")
            raise NotFound("no such document")
        doc = found[0]
        versions = await self.rows(datasette, "SELECT version, crawl_id, fetched_at, title, "
                                   "text_hash, outcome, pages, text FROM versions "
                                   "WHERE doc_id = ? ORDER BY version", [doc_id])
        numbers = [v["version"] for v in versions]

        def pick(name: str, default: int | None) -> int | None:
            try:
                value = int(request.args.get(name) or default or 0)
            except ValueError:
                return default
            return value if value in numbers else default

        new = pick("b", numbers[-1] if numbers else None)
        old = pick("a", numbers[-2] if len(numbers) > 1 else None)
        by_number = {v["version"]: v for v in versions}
        diff = (line_diff(by_number[old]["text"] or "", by_number[new]["text"] or "")
                if old and new and old != new else None)
        for v in versions:
            v["pages"] = _json(v["pages"], [])
            v.pop("text")
        attachments = await self.rows(datasette, f"""
            SELECT d.position, d.url, d.name, {LINKED_SHA} AS sha256, a.bytes, a.content_type,
                   a.text, a.text_meta
            FROM {LINKED_ATTACHMENTS}
            WHERE d.doc_id = ? GROUP BY d.position ORDER BY d.position""", [doc_id])
        for a in attachments:
            a["text_meta"] = _json(a["text_meta"], {})
        aliases = await self.rows(datasette, "SELECT url, site, crawl_id, fetched_at FROM aliases "
                                  "WHERE canonical_id = ? ORDER BY url", [doc_id])
        similar = await self.rows(datasette, """
            SELECT n.doc_id, n.similarity, d.title, d.site FROM near_duplicates n
            JOIN documents d ON d.doc_id = n.doc_id WHERE n.canonical_id = ?
            GROUP BY n.doc_id ORDER BY n.similarity DESC""", [doc_id])
        canonical = None
        if doc["canonical_id"]:
            rows = await self.rows(datasette, "SELECT doc_id, title, site FROM documents "
                                   "WHERE doc_id = ?", [doc["canonical_id"]])
            canonical = rows[0] if rows else {"doc_id": doc["canonical_id"], "title": None}
        findings = await self.rows(datasette, "SELECT version, finding FROM findings "
                                   "WHERE doc_id = ? ORDER BY version, finding", [doc_id])
        return await self.render(datasette, request, "govcrawl_document.html", {
            "doc": doc, "meta_rows": [(label, name, doc.get(name)) for name, label in META_FIELDS],
            "page_meta": _json(doc["page_meta"], {}), "versions": versions, "old": old,
            "new": new, "diff": diff, "attachments": attachments, "aliases": aliases,
            "similar": similar, "canonical": canonical, "findings": findings,
            "spam_removed": _json(doc["spam_removed"], []), "removed": _json(doc["removed"], {}),
            "paragraphs": (doc["text"] or "").splitlines(),
        })

    async def raw_capture(self, datasette: Any, request: Any) -> Response:
        """The archived HTTP response, as plain text: headers, a blank line, the body."""
        doc_id = _checked(request.url_vars["doc_id"], DOC_ID)
        version = request.url_vars["version"]
        rows = await self.rows(datasette, "SELECT pages FROM versions WHERE doc_id = ? AND "
                               "version = ?", [doc_id, int(version)])
        if not rows or self.archive is None:
            raise NotFound("no such capture")
        pages = _json(rows[0]["pages"], [])
        try:
            page = pages[int(request.args.get("page") or 0)]
            capture = read_capture(self.archive, page.get("warc") or {})
        except (ValueError, IndexError, KeyError, AttributeError):
            raise NotFound("capture not in the archive") from None
        charset = "utf-8"
        for name, value in capture.headers:
            m = re.search(r"charset=([A-Za-z0-9_-]+)", value) if name.lower() == "content-type" \
                else None
            if m:
                charset = m.group(1)
        try:
            body = capture.body.decode(charset, "replace")
        except LookupError:
            body = capture.body.decode("utf-8", "replace")
        head = "\n".join([f"WARC-Target-URI: {capture.url}", f"WARC-Date: {capture.date}", "",
                          capture.status_line, *(f"{k}: {v}" for k, v in capture.headers)])
        return Response(head + "\n\n" + body, content_type="text/plain; charset=utf-8",
                        headers={"content-security-policy": "sandbox; default-src 'none'",
                                 "content-disposition": "inline"})

    async def _attachment(self, datasette: Any, sha: str) -> dict[str, Any]:
        sha = _checked(sha, SHA256)
        rows = await self.rows(datasette, "SELECT * FROM attachments WHERE sha256 = ?", [sha])
        if not rows:
            raise NotFound("no such attachment")
        return rows[0]

    async def attachment_body(self, datasette: Any, request: Any) -> Response:
        """The attachment's bytes as a download (never displayed inline)."""
        row = await self._attachment(datasette, request.url_vars["sha"])
        if self.archive is None:
            raise NotFound("no archive")
        from crawler.archive import layout

        try:
            body = self.archive.get(layout.attachment_body_key(row["sha256"]))
        except KeyError:
            raise NotFound("attachment not in the archive") from None
        name = (row["name"] or row["sha256"]).replace("\\", "_").replace("/", "_")
        ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "attachment"
        return Response(body, content_type="application/octet-stream", headers={
            "content-disposition": f"attachment; filename=\"{ascii_name}\"; "
                                   f"filename*=UTF-8''{quote(name)}",
            "content-security-policy": "sandbox; default-src 'none'"})

    async def attachment_text(self, datasette: Any, request: Any) -> Response:
        row = await self._attachment(datasette, request.url_vars["sha"])
        if row["text"] is None:
            raise NotFound("no text archived for this attachment")
        return Response.text(row["text"], headers={
            "content-security-policy": "sandbox; default-src 'none'"})

    async def sites_page(self, datasette: Any, request: Any) -> Response:
        sites = await self.rows(datasette, """
            SELECT s.site, s.docs, c.crawls, c.last FROM
              (SELECT site, count(*) AS docs FROM documents GROUP BY site) s
            LEFT JOIN (SELECT site, count(*) AS crawls, max(started) AS last FROM crawls
                       GROUP BY site) c ON c.site = s.site ORDER BY s.site""")
        return await self.render(datasette, request, "govcrawl_sites.html", {"sites": sites})

    async def site_page(self, datasette: Any, request: Any) -> Response:
        site = _checked(request.url_vars["site"], SITE)
        crawls = await self.rows(datasette, "SELECT * FROM crawls WHERE site = ? "
                                 "ORDER BY started, crawl_id", [site])
        docs = await self.rows(datasette, "SELECT count(*) AS n FROM documents WHERE site = ?",
                               [site])
        if not crawls and not docs[0]["n"]:
            raise NotFound("no such site")
        for c in crawls:
            c["errors_by_kind"] = _json(c["errors_by_kind"], {})
        return await self.render(datasette, request, "govcrawl_site.html", {
            "site": site, "crawls": crawls, "documents": docs[0]["n"],
            "chart": crawl_chart(crawls)})


def crawl_chart(crawls: list[dict[str, Any]], width: int = 640, height: int = 160
                ) -> dict[str, Any]:
    """Geometry of a bar chart of new and changed documents per crawl (drawn as inline SVG)."""
    shown = crawls[-40:]
    peak = max([c["new"] + c["changed"] for c in shown] + [1])
    top, bottom = 14, 22
    plot = height - top - bottom
    step = (width - 40) / max(len(shown), 1)
    bar = max(2.0, min(24.0, step * 0.7))
    bars = []
    for i, c in enumerate(shown):
        x = 30 + i * step + (step - bar) / 2
        new_h = plot * c["new"] / peak
        changed_h = plot * c["changed"] / peak
        bars.append({
            "x": round(x, 1), "w": round(bar, 1), "crawl_id": c["crawl_id"],
            "label": (c["started"] or c["crawl_id"] or "")[:10],
            "new": c["new"], "changed": c["changed"],
            "new_y": round(top + plot - new_h, 1), "new_h": round(new_h, 1),
            "changed_y": round(top + plot - new_h - changed_h, 1),
            "changed_h": round(changed_h, 1),
        })
    return {"width": width, "height": height, "bars": bars, "peak": peak,
            "base_y": top + plot, "top": top}
