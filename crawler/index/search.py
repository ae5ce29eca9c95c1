"""Full-text search with facets over the index (a plain ``sqlite3`` connection).

Words of three or more characters use the FTS5 ``trigram`` index (any substring, so Chinese needs
no dictionary or segmenter); words of two Chinese characters (``征地``, ``公告``: below what a
trigram can index) use the bigram index (crawler.index.bigrams); other short words (one
character, ``5G``) fall back to a substring scan of title, text and attachment text. Every word
must match (AND); ``"quoted words"`` stay one phrase.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from crawler.index import bigrams

#: facet parameter -> (column, label)
FACETS: dict[str, tuple[str, str]] = {
    "site": ("site", "site"),
    "year": ("year", "year"),
    "publisher": ("publisher", "发布机构"),
    "topic": ("topic", "主题分类"),
    "has_attachments": ("has_attachments", "has attachments"),
    "has_findings": ("has_findings", "has findings"),
}
SEARCH_COLUMNS = ("title", "text", "attachment_text")
_WORDS = re.compile(r'"([^"]+)"|(\S+)')
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
MAX_WORDS = 8
FACET_LIMIT = 15


@dataclass
class SearchResult:
    rows: list[dict[str, Any]]
    total: int
    facets: dict[str, list[tuple[Any, int]]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)


def parse_words(query: str) -> list[str]:
    """The words of a query: whitespace-separated, ``"…"`` kept together, at most MAX_WORDS."""
    words = [(m.group(1) or m.group(2)).strip() for m in _WORDS.finditer(query or "")]
    return [w for w in words if w][:MAX_WORDS]


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filters(filters: dict[str, list[str]], since: str | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``documents d`` for the facet filters and the date."""
    clauses: list[str] = []
    params: list[Any] = []
    for name, values in filters.items():
        column = FACETS[name][0]
        parts = []
        for value in values:
            if value == "":
                parts.append(f"d.{column} IS NULL")
            else:
                parts.append(f"d.{column} = ?")
                params.append(value)
        clauses.append("(" + " OR ".join(parts) + ")")
    if since and _DATE.match(since):
        clauses.append("coalesce(d.published, substr(d.fetched_at, 1, 10)) >= ?")
        params.append(since)
    return clauses, params


#: What a search's hits carry beside rowid and rank: the columns the page's order, the filters
#: and the facets read.
HIT_COLUMNS = ("doc_id", *dict.fromkeys(c for c, _label in FACETS.values()), "published",
               "fetched_at")
#: Up to this many matches are copied with :data:`HIT_COLUMNS` into a small table that the
#: count and the facets then read; more (a common word matching much of the archive) are
#: counted through the facet columns' indexes instead, cheaper than that many row lookups.
COPY_LIMIT = 10_000


def _match(conn: sqlite3.Connection, words: list[str]) -> int:
    """Fill the temporary ``_ids`` table with (rowid, rank) of the documents matching every word;
    how many there are."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (rowid INTEGER PRIMARY KEY, rank REAL)")
    conn.execute("DELETE FROM _ids")
    long_words = [w for w in words if len(w) >= 3]
    pairs = [w for w in words if len(w) < 3 and bigrams.is_cjk_pair(w)]
    short = [w for w in words if len(w) < 3 and not bigrams.is_cjk_pair(w)]
    pair_match = [" AND ".join(_fts_phrase(w) for w in pairs)]
    in_pairs = f"SELECT rowid FROM {bigrams.TABLE} WHERE {bigrams.TABLE} MATCH ?"
    like = " AND ".join("(" + " OR ".join(f"d.{c} LIKE ? ESCAPE '\\'" for c in SEARCH_COLUMNS)
                        + ")" for _ in short)
    like_params = [_like(w) for w in short for _ in SEARCH_COLUMNS]
    if long_words:  # ranked by bm25, the title weighted above the text
        conn.execute("INSERT INTO _ids SELECT rowid, bm25(documents_fts, 5.0, 1.0, 0.5) "
                     "FROM documents_fts WHERE documents_fts MATCH ?",
                     [" AND ".join(_fts_phrase(w) for w in long_words)])
    elif pairs:
        conn.execute(f"INSERT INTO _ids {in_pairs.replace('rowid', 'rowid, 0', 1)}", pair_match)
        pairs = []
    else:
        conn.execute(f"INSERT INTO _ids SELECT d.rowid, 0 FROM documents d WHERE {like}",
                     like_params)
        short = []
    if pairs:  # narrow the hits: the index answers two-character words
        conn.execute(f"DELETE FROM _ids WHERE rowid NOT IN ({in_pairs})", pair_match)
    if short:  # only the remaining hits are scanned for the other short words
        conn.execute(f"DELETE FROM _ids WHERE rowid NOT IN (SELECT d.rowid FROM _ids h "
                     f"JOIN documents d ON d.rowid = h.rowid WHERE {like})", like_params)
    return conn.execute("SELECT count(*) FROM _ids").fetchone()[0]


def search(conn: sqlite3.Connection, query: str = "", filters: dict[str, list[str]] | None = None,
           since: str | None = None, limit: int = 20, offset: int = 0,
           with_facets: bool = True) -> SearchResult:
    """Documents matching ``query`` and the facet ``filters`` (values per facet are OR-ed).

    The words are evaluated once (``_ids``: rowid, rank); the page of results is chosen first,
    and only its documents' rows (with their long text) are read."""
    words = parse_words(query)
    filters = {k: vs for k, vs in (filters or {}).items() if k in FACETS and vs}
    if not words:
        source, order = "documents d", "d.published IS NULL, d.published DESC, d.doc_id"
    elif _match(conn, words) <= COPY_LIMIT:
        columns = ", ".join(f"d.{c}" for c in HIT_COLUMNS)
        conn.execute("DROP TABLE IF EXISTS temp._hits")
        conn.execute(f"CREATE TEMP TABLE _hits AS SELECT h.rowid AS rowid, h.rank AS rank, "
                     f"{columns} FROM _ids h CROSS JOIN documents d ON d.rowid = h.rowid")
        source, order = "_hits d", "d.rank, d.doc_id"
    else:
        source, order = "_ids h JOIN documents d ON d.rowid = h.rowid", "h.rank, d.doc_id"

    def where(skip_facet: str | None = None) -> tuple[str, list[Any]]:
        clauses, params = _filters({k: v for k, v in filters.items() if k != skip_facet}, since)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    sql_where, params = where()
    page = [r[0] for r in conn.execute(
        f"SELECT d.rowid FROM {source} {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset])]
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row  # this query's rows only: the connection may be the caller's
    found = {r["_rowid"]: dict(r) for r in cursor.execute(
        f"SELECT d.rowid AS _rowid, {ROW_COLUMNS} FROM documents d "
        f"WHERE d.rowid IN ({', '.join('?' * len(page))})", page)} if page else {}
    rows = [found[rowid] for rowid in page if rowid in found]
    for row in rows:
        del row["_rowid"]
        row["snippet"] = snippet(row.pop("text") or "", row.pop("attachment_text") or "", words)
    total = conn.execute(f"SELECT count(*) FROM {source} {sql_where}", params).fetchone()[0]
    facets: dict[str, list[tuple[Any, int]]] = {}
    if with_facets:
        for name, (column, _label) in FACETS.items():
            f_where, f_params = where(skip_facet=name)
            facets[name] = [(r[0], r[1]) for r in conn.execute(
                f"SELECT d.{column}, count(*) AS n FROM {source} {f_where} "
                f"GROUP BY d.{column} ORDER BY n DESC, d.{column} LIMIT {FACET_LIMIT}", f_params)]
    return SearchResult(rows, total, facets, words)


#: The columns of a result row (``text`` and ``attachment_text`` become its snippet).
ROW_COLUMNS = ("d.doc_id, d.site, d.title, d.published, d.publisher, d.topic, d.index_no, "
               "d.version, d.versions, d.attachment_count, d.findings, d.url, d.final_url, "
               "d.fetched_at, d.text, d.attachment_text")


def snippet(text: str, attachment_text: str, words: list[str],
            width: int = 60) -> list[tuple[str, bool]]:
    """A short excerpt around the first match: ``[(segment, is_match), …]`` (plain text; the
    caller escapes it). Falls back to the attachment text, then to the text's start."""
    lowered_words = [w.lower() for w in words]
    for source in (text, attachment_text):
        low = source.lower()
        hits = [low.find(w) for w in lowered_words if w and low.find(w) >= 0]
        if hits:
            start = max(0, min(hits) - width)
            end = min(len(source), min(hits) + width * 2)
            return _mark(("…" if start else "") + source[start:end].replace("\n", " ")
                         + ("…" if end < len(source) else ""), lowered_words)
    if not words:
        head = text[: width * 2].replace("\n", " ")
        return [(head + ("…" if len(text) > width * 2 else ""), False)]
    return []


def _mark(excerpt: str, words: list[str]) -> list[tuple[str, bool]]:
    if not words:
        return [(excerpt, False)]
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in pattern.finditer(excerpt):
        if m.start() > pos:
            parts.append((excerpt[pos:m.start()], False))
        parts.append((m.group(0), True))
        pos = m.end()
    if pos < len(excerpt):
        parts.append((excerpt[pos:], False))
    return parts
