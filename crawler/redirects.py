"""Redirects that stop at the first repeated URL.

Scrapy's redirect middlewares follow up to ``REDIRECT_MAX_TIMES`` (20) hops, so a page that
redirects to itself, or two that redirect to each other, costs twenty requests (and, with
AutoThrottle's delay, tens of seconds) before it fails as "max redirections reached". These
subclasses fail it at the first URL the chain already went through with :class:`RedirectLoop`,
``redirect loop: A -> B -> A`` (the spiders count it as ``govcrawl/errors/RedirectLoop``). One
repeat is allowed when the redirecting response set a cookie, as a site that redirects a first
visit to itself once its session cookie is set does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares import redirect
from scrapy.exceptions import IgnoreRequest

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

#: Request meta key: the redirecting response set a cookie (the next request differs).
SET_COOKIE_META = "govcrawl_redirect_set_cookie"


class RedirectLoop(IgnoreRequest):
    """A redirect to a URL the chain already went through."""


def _without_fragment(url: str) -> str:
    return url.partition("#")[0]


class LoopGuard:
    """Mixin for Scrapy's redirect middlewares: a redirect to a URL already in the chain fails."""

    def _build_redirect_request(self, source_request: Request, response: Response, *,
                                url: str, **kwargs: Any) -> Request:
        redirected = super()._build_redirect_request(  # type: ignore[misc]
            source_request, response, url=url, **kwargs)
        redirected.meta[SET_COOKIE_META] = bool(response.headers.getlist("Set-Cookie"))
        return redirected

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", []), request.url]
        target = _without_fragment(redirected.url)
        seen = [_without_fragment(u) for u in chain].count(target)
        if seen and not (seen == 1 and redirected.meta.get(SET_COOKIE_META)):
            raise RedirectLoop(f"redirect loop: {' -> '.join([*chain, redirected.url])}")
        return super()._redirect(redirected, request, reason)  # type: ignore[misc]


class RedirectMiddleware(LoopGuard, redirect.RedirectMiddleware):
    """Scrapy's 3xx ``Location`` redirects, stopping at the first repeated URL."""


class MetaRefreshMiddleware(LoopGuard, redirect.MetaRefreshMiddleware):
    """Scrapy's ``<meta http-equiv="refresh">`` redirects, stopping at the first repeated URL."""
