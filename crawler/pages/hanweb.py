"""Hanweb / 大汉 JCMS pages: column records embedded as ``<datastore>`` for ``jpage.js``, and the
``dataproxy.jsp`` XML answers that carry the records after them."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

from crawler import listing
from crawler.listing import HanwebList, Link
from crawler.pages.base import GenericPage


class HanwebPage(GenericPage):
    """A Hanweb page, its ``<datastore>`` parsed once.

    On a column page the records' links come first, then the page's own links (sub-columns,
    attachments); a ``dataproxy.jsp`` answer is only records. The next page is the
    ``dataproxy.jsp`` request for the following records (``startrecord``/``endrecord``,
    ``hanweb_perpage`` at a time) until ``totalrecord`` is reached or a page comes back short.
    A page without a datastore (articles, server-rendered lists) is read by the generic rules."""

    family: ClassVar[str] = "hanweb"

    @cached_property
    def store(self) -> HanwebList | None:
        """The page's datastore records, or None when it has none."""
        return listing.hanweb_datastore(self.text, self.url)

    @property
    def recognised(self) -> bool:
        return self.store is not None

    @property
    def is_proxy_answer(self) -> bool:
        """True for a ``dataproxy.jsp`` XML answer (records only, no page around them)."""
        return self.store is not None and "dataproxy.jsp" in self.url

    @cached_property
    def _list_links(self) -> list[Link]:
        if self.store is None:
            return super()._list_links
        links = listing.hanweb_links(self.store, self.url)
        if not self.is_proxy_answer:
            # the page's own links; the records are among them too (anchors inside the
            # datastore script), so each URL is kept once, records first
            links += super()._list_links
        first: dict[str, Link] = {}
        for link in links:
            first.setdefault(link.url, link)
        return list(first.values())

    def next_pages(self) -> list[str]:
        if self.store is not None and self.store.proxy_url:
            nxt = listing.hanweb_next_url(self.store, self.url, self.options.hanweb_perpage)
            return [nxt] if nxt else []
        return super().next_pages()
