"""Page objects per CMS family: what a fetched portal page links to, parsed apart from crawling.

Each family is a small class (:class:`GenericPage` and its subclasses) built from a page's URL
and text, with ``links()``, ``next_pages()``, ``more_pages()`` and ``attachments()``. A profile's
``cms`` field chooses the family (:data:`FAMILIES`); ``auto`` (the default) recognises each page
by its own format, in the order of :data:`AUTO_ORDER`, and reads the rest as generic pages.
"""

from __future__ import annotations

from crawler.pages.base import GenericPage, PageOptions
from crawler.pages.hanweb import HanwebPage
from crawler.pages.jpaas import JpaasPage
from crawler.pages.trs import TrsPage
from crawler.pages.ucap import UcapPage

#: The families a profile's ``cms`` may name.
FAMILIES: dict[str, type[GenericPage]] = {
    cls.family: cls for cls in (GenericPage, TrsPage, HanwebPage, JpaasPage, UcapPage)
}
AUTO = "auto"
#: ``cms:`` values a profile may give.
CMS_CHOICES = (AUTO, *FAMILIES)
#: What ``cms: auto`` looks for on each page, first match wins: a JPaaS JSON answer, a Hanweb
#: ``<datastore>``; any other page is generic (whose rules include the TRS ``_N`` pagers).
AUTO_ORDER: tuple[type[GenericPage], ...] = (JpaasPage, HanwebPage)


def page_for(url: str, text: str, cms: str = AUTO,
             options: PageOptions | None = None) -> GenericPage:
    """The page object reading ``text`` (fetched from ``url``) for a profile saying ``cms``."""
    if cms != AUTO:
        return FAMILIES[cms](url, text, options)
    for cls in AUTO_ORDER:
        page = cls(url, text, options)
        if page.recognised:
            return page
    return GenericPage(url, text, options)


__all__ = ["AUTO", "AUTO_ORDER", "CMS_CHOICES", "FAMILIES", "GenericPage", "HanwebPage",
           "JpaasPage", "PageOptions", "TrsPage", "UcapPage", "page_for"]
