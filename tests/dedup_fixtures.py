"""Real texts for the dedup tests: seed texts and the article bodies of the bundled corpus pages."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from parsel import Selector

from crawler.items import ARTICLE, Document, PageItem, ResponseRecord

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
SEEDS = REPO / "tests" / "seeds"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@lru_cache(maxsize=1)
def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


@lru_cache(maxsize=1)
def corpus_articles() -> list[dict]:
    """One dict per gold article: id, url, index_no, title, text (of the gold body container)."""
    manifest = {r["id"]: r for r in _jsonl(CORPUS / "manifest.jsonl")}
    out = []
    for gold in _jsonl(CORPUS / "gold.jsonl"):
        meta = manifest[gold["id"]]
        raw = (CORPUS / "pages" / f"{gold['id']}.html").read_bytes()
        html = raw.decode(meta.get("charset_actual") or "utf-8", errors="replace")
        sel = Selector(text=html).css(gold["body_selector"])
        text = "\n".join(t.strip() for t in sel.xpath(
            ".//text()[not(ancestor::script) and not(ancestor::style)]").getall() if t.strip())
        if len(text) >= 100:
            url = meta.get("url") or f"http://{meta['site'].split()[0]}/{gold['id']}.html"
            out.append({"id": gold["id"], "url": url, "title": gold.get("title"),
                        "index_no": gold.get("index_no"), "text": text, "site": meta["site"]})
    return out


def make_item(url: str, text: str, *, site: str = "test-site", index_no: str | None = None,
              title: str | None = None, headers: list[tuple[str, str]] | None = None,
              kind: str = ARTICLE, attachments: list[dict] | None = None,
              is_document: bool = True) -> PageItem:
    record = ResponseRecord(url=url, status=200, headers=headers or [], body=text.encode("utf-8"))
    doc = Document(url=url, text=text, title=title, index_no=index_no,
                   attachments=attachments or [], is_document=is_document)
    return PageItem(site=site, kind=kind, response=record, document=doc)


def edit_text(text: str, fraction: float = 0.02, spans: int = 6) -> str:
    """Replace about ``fraction`` of the characters, in ``spans`` word-sized places spread over the
    text (the way a re-posted notice differs: a date, a name, a figure)."""
    total = max(spans, int(len(text) * fraction))
    size = max(1, total // spans)
    chars = list(text)
    step = len(chars) // (spans + 1)
    for i in range(1, spans + 1):
        start = i * step
        for j in range(start, min(start + size, len(chars))):
            if not chars[j].isspace():
                chars[j] = "改" if chars[j] != "改" else "动"
    return "".join(chars)


STATE_EXTENSIONS = {"EXTENSIONS": {"crawler.dedup.service.StateService": 100}}


def make_pipeline(state_dir: Path, **settings: Any) -> Any:
    """A DedupPipeline on a crawler with its state service (as a crawl has them)."""
    from scrapy.utils.test import get_crawler

    from pipelines.dedup import DedupPipeline

    crawler = get_crawler(settings_dict={"GOVCRAWL_STATE_DIR": str(state_dir),
                                         **STATE_EXTENSIONS, **settings})
    return DedupPipeline.from_crawler(crawler)


def decide(pipeline: Any, item: PageItem) -> PageItem:
    """Run ``pipeline.process_item`` (a coroutine that only waits while a commit is drained)
    to its end; the item stays in flight until its signal is sent."""
    from twisted.internet.defer import Deferred

    done = Deferred.fromCoroutine(pipeline.process_item(item))
    assert done.called, "the item is held: a commit is being drained"
    return done.result
