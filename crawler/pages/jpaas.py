"""JPaaS pages: a column's documents served as JSON by ``front/page/build/unit``
(``{"data": {"html": "<ul>...</ul>"}}``), paged by ``paramJson={"pageNo": N, ...}``."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

from crawler import listing
from crawler.listing import Link
from crawler.pages.base import GenericPage


class JpaasPage(GenericPage):
    """A JPaaS page, its JSON parsed once. A ``build/unit`` answer's links are those of its
    ``data.html`` fragment, and its next page is the same request with ``pageNo`` + 1 while it
    lists anything. Any other page (HTML columns, articles) is read by the generic rules."""

    family: ClassVar[str] = "jpaas"

    @cached_property
    def fragment(self) -> str | None:
        """The ``data.html`` fragment of a JSON answer, or None when the page is not one."""
        return listing.jpaas_html(self.text) if self.text.lstrip().startswith("{") else None

    @property
    def recognised(self) -> bool:
        return self.fragment is not None

    @cached_property
    def _list_links(self) -> list[Link]:
        if self.fragment is None:
            return super()._list_links
        return listing.extract_links(self.fragment, self.url)

    def next_pages(self) -> list[str]:
        if self.fragment is not None and "/build/unit" in self.url:
            return [listing.jpaas_next_url(self.url)] if self.links() else []
        return super().next_pages()
