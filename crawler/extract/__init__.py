"""Government-aware extraction and cleaning.

Public API::

    decode_html(body, content_type=None) -> (text, encoding)
    extract(body, url, headers=None, status=None) -> Document   # status: HTTP status, if known
    find_attachments(text, url, container=None) -> [{'url', 'name'}]   # what extract() lists
    classify_line(text, zone) -> label | None        # boilerplate label of one line
    spam_verdict(line) -> 'spam' | 'keep' | 'review'
    cloaking_findings({'browser': text, 'baiduspider': text, ...}) -> [finding]

Lexicons and patterns are data: ``crawler/lexicons/*.yaml``.
"""

from crawler.extract.core import extract, find_attachments
from crawler.extract.decode import decode_html
from crawler.extract.findings import cloaking_findings
from crawler.extract.lines import classify_line, spam_verdict

__all__ = [
    "classify_line", "cloaking_findings", "decode_html", "extract", "find_attachments",
    "spam_verdict",
]
