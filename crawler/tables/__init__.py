"""The data tables shared by crawling and extraction (``crawler/tables/*.yaml``).

Each table has one owner module: ``urls.yaml`` -> :mod:`crawler.urls`, ``challenges.yaml`` ->
:mod:`crawler.challenges`, ``attachments.yaml`` -> :mod:`crawler.attachments`,
``attachment_links.yaml`` -> :mod:`crawler.extract.filelinks`, ``file_formats.yaml`` ->
:mod:`crawler.extract.attachments`. Edit the YAML, not the code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TABLES_DIR = Path(__file__).resolve().parent


@cache
def load_table(name: str) -> dict[str, Any]:
    """The parsed table ``crawler/tables/<name>.yaml`` (read once per process)."""
    with open(TABLES_DIR / f"{name}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)
