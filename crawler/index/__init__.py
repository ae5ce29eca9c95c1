"""An SQLite index of the archive (documents, versions, aliases, attachments, crawls) for search.

``build_index(archive, db_path)`` reads only the manifests that are new or have grown since the
last run; :func:`search` runs a full-text query (FTS5 ``trigram``, no dictionary needed for
Chinese) with facets. ``govcrawl index`` and ``govcrawl serve`` use both.
"""

from crawler.index.build import IndexStats, build_index, open_index
from crawler.index.search import FACETS, SearchResult, search

__all__ = ["FACETS", "IndexStats", "SearchResult", "build_index", "open_index", "search"]
