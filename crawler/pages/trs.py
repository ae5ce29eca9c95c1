"""TRS WCM (拓尔思) pages: lists paged by ``createPageHTML(total, current, "index", "html")``."""

from __future__ import annotations

from typing import ClassVar

from crawler import listing
from crawler.pages.base import GenericPage


class TrsPage(GenericPage):
    """A TRS page. The template's ``_N`` pager script (``createPageHTML`` or a ``Pager({...})``
    configuration) knows the column's page count, so when the page calls one, its answer is final:
    on the last page there is no next page, whatever other links the page carries. Pages without
    a pager call are read by the generic rules."""

    family: ClassVar[str] = "trs"

    @property
    def recognised(self) -> bool:
        return bool(listing.page_schemes(self.text))

    def next_pages(self) -> list[str]:
        selected = self._selected_next()
        if selected is not None:
            return selected
        if listing.page_schemes(self.text):
            return listing.scheme_next_pages(self.text, self.url)
        return listing.list_next_pages(self.text, self.url, self.links())
