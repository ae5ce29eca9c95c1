"""开普云 UCAP pages: ``index.shtml`` columns paged by "下一页" links (``index_N.shtml``),
articles in a ``<ucapcontent>`` element."""

from __future__ import annotations

from typing import ClassVar

from crawler.pages.base import GenericPage


class UcapPage(GenericPage):
    """A UCAP page. Its lists and articles are plain HTML ("下一页" and numbered ``index_N.shtml``
    links, attachments as anchors), which the generic rules read; the family is named so that
    ``cms: ucap`` profiles skip the Hanweb/JPaaS formats and have a place for UCAP-only rules."""

    family: ClassVar[str] = "ucap"
