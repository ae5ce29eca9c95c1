"""The page-object base: one fetched page of a portal, and what it links to.

A page object is built from a page's URL and decoded text (no request, no crawler state) and
answers four questions, each parsed at most once:

* :meth:`GenericPage.links` – the links of a list (column) page (attachments linked the ways
  extraction's finder knows included);
* :meth:`GenericPage.next_pages` – the list page(s) after this one (one step);
* :meth:`GenericPage.more_pages` – the other pages of an article split over several pages;
* :meth:`GenericPage.attachments` – the files an article links (found by extraction's finder).

:class:`GenericPage` reads what any template may carry: anchors and ``document.write`` links, the
``_N`` script pagers (``createPageHTML``, ``Pager({...})``), "下一页" and numbered sibling links.
The CMS families (``crawler/pages/<family>.py``) refine it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from parsel import Selector
from w3lib.html import get_base_url

from crawler import htmltree, listing, urls
from crawler.listing import Link

if TYPE_CHECKING:
    from crawler.profiles import Profile


@dataclass(frozen=True)
class PageOptions:
    """What a profile says about reading its pages (all optional)."""

    list_selector: str | None = None  # CSS: the container of a list page's document links
    next_selector: str | None = None  # CSS: the "next page" link of a list page
    article_selector: str | None = None  # CSS: the article container (where attachments are)
    hanweb_perpage: int | None = None  # records per Hanweb dataproxy.jsp request

    @classmethod
    def from_profile(cls, profile: Profile) -> PageOptions:
        selectors = profile.selectors
        return cls(list_selector=selectors.get("list"), next_selector=selectors.get("next"),
                   article_selector=selectors.get("article"),
                   hanweb_perpage=profile.hanweb_perpage)


class GenericPage:
    """A page of no particular CMS: the rules every family falls back to."""

    family: ClassVar[str] = "generic"

    def __init__(self, url: str, text: str, options: PageOptions | None = None) -> None:
        self.url = url
        self.text = text
        self.options = options or PageOptions()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def recognised(self) -> bool:
        """True when the page is in this family's own format (what ``cms: auto`` looks for)."""
        return True

    # --- list pages ---------------------------------------------------------------------------

    @cached_property
    def selector(self) -> Selector:
        return htmltree.selector(self.text)  # the page as a browser builds it

    @cached_property
    def _list_links(self) -> list[Link]:
        links = listing.extract_links(self.selector, self.url, self.options.list_selector)
        known = {link.url for link in links}
        return links + [link for link in self._file_links(self.options.list_selector)
                        if link.url not in known]

    def _file_links(self, css: str | None) -> list[Link]:
        """Attachment links an anchor walk misses (``javascript:`` links with the URL in another
        attribute, script handlers, a viewer page's file), by extraction's finder
        (:mod:`crawler.extract.filelinks`), inside ``css`` when it matches; only looked for
        when the raw text names a file of an attachment type."""
        if not listing.attachment_hint(self.text):
            return []
        from crawler.extract.filelinks import find_file_links  # extraction is heavy to import

        scopes = self.selector.css(css) if css else []
        found: dict[str, str] = {}
        for scope in [s.root for s in scopes] or [self.selector.root]:
            scripts = [script.text or "" for script in scope.iter("script")]
            for attachment in find_file_links(scope, scripts, self.url):
                found.setdefault(attachment["url"], attachment["name"])
        return [Link(url, name) for url, name in found.items()]

    def links(self) -> list[Link]:
        """The links of this list page (documents, attachments, sub-columns), in page order."""
        return list(self._list_links)

    def _selected_next(self) -> list[str] | None:
        """The profile's ``next`` selector's link, or None when the profile has none."""
        css = self.options.next_selector
        if not css:
            return None
        hrefs = self.selector.css(css).css("a::attr(href), ::attr(href)").getall()
        base = get_base_url(self.text[:4096], self.url)
        return [url for href in hrefs[:1] if (url := urls.join(base, href.strip()))]

    def next_pages(self) -> list[str]:
        """The next list page(s): the profile's ``next`` selector, else ``_N`` pager scripts,
        "下一页" links, numbered sibling links (:func:`crawler.listing.list_next_pages`)."""
        selected = self._selected_next()
        if selected is not None:
            return selected
        return listing.list_next_pages(self.text, self.url, self.links())

    # --- article pages ------------------------------------------------------------------------

    @cached_property
    def _may_link_more(self) -> bool:
        """Cheap look at the raw text: could this article link an attachment or its next page?"""
        return listing.article_link_hints(self.text, self.url)

    @cached_property
    def _article_links(self) -> list[Link]:
        return listing.extract_links(self.selector, self.url) if self._may_link_more else []

    def more_pages(self) -> list[str]:
        """The other pages of this article, in order (``_1.html`` ..., ``?page=N``)."""
        return listing.article_pages(self.text, self.url, self._article_links)

    def attachments(self) -> list[Link]:
        """The files this article links (inside the profile's ``article`` container when it
        matches), found by extraction's attachment finder."""
        if not self._may_link_more:
            return []
        from crawler.extract import find_attachments  # extraction is heavy to import

        found = find_attachments(self.text, self.url, self.options.article_selector)
        return [Link(a["url"], a["name"]) for a in found]
