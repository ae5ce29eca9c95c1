"""``govcrawl serve``: Datasette over the index, with govcrawl's templates and plugin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crawler.archive.archive import Archive

TEMPLATES = Path(__file__).resolve().parent / "templates"
PLUGIN_NAME = "govcrawl"
SETTINGS = {
    "default_allow_sql": False,  # arbitrary SQL off (the plugin also denies execute-sql)
    "allow_download": False,
    "suggest_facets": False,
    "default_page_size": 50,
    "max_returned_rows": 1000,
    "sql_time_limit_ms": 3000,
}


def make_datasette(db_path: str | Path, archive: Archive | None) -> Any:
    """A Datasette instance serving the index at ``db_path`` read-only, our plugin registered."""
    from datasette.app import Datasette
    from datasette.plugins import pm

    from crawler.serve.plugin import GovcrawlPlugin

    db_path = Path(db_path)
    database = db_path.stem
    if pm.has_plugin(PLUGIN_NAME):
        pm.unregister(name=PLUGIN_NAME)
    pm.register(GovcrawlPlugin(archive, database), name=PLUGIN_NAME)
    # Our error pages replace Datasette's (which print tracebacks with local variables)
    if pm.has_plugin("datasette.handle_exception"):
        pm.unregister(name="datasette.handle_exception")
    metadata = {
        "title": "govcrawl archive",
        "description": "Search and browse the archive (read-only).",
        "databases": {database: {"tables": {
            "_meta": {"hidden": True}, "_manifests": {"hidden": True}}}},
    }
    ds = Datasette([str(db_path)], metadata=metadata, settings=SETTINGS,
                   template_dir=str(TEMPLATES), cache_headers=False)
    asyncio.run(ds.invoke_startup())
    return ds


def serve(db_path: str | Path, archive: Archive | None, host: str = "127.0.0.1",
          port: int = 8000) -> None:
    """Run the web UI until interrupted."""
    import uvicorn

    ds = make_datasette(db_path, archive)
    print(f"serving {db_path} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on", workers=1)
