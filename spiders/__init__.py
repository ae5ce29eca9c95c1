"""Spiders: ``fetch`` (one URL) and one portal spider per site profile.

Scrapy's spider loader walks this package (``SPIDER_MODULES = ["spiders"]``) and finds, in this
module, one :class:`~spiders.portal.PortalSpider` subclass per profile file of
``spiders/profiles/`` (or of ``GOVCRAWL_PROFILES``), named after the profile. Adding a site is
writing a profile file: no code.
"""

from __future__ import annotations

from crawler.profiles import Profile, read_profiles
from spiders.portal import PortalSpider


def spider_class(profile: Profile) -> type[PortalSpider]:
    """The spider class for one profile (``name`` = profile name)."""
    class_name = "".join(part.capitalize() for part in profile.name.split("_")) + "Spider"
    return type(class_name, (PortalSpider,), {
        "name": profile.name,
        "profile": profile,
        "__module__": __name__,
        "__doc__": f"{profile.title}: generated from {profile.path}.",
    })


def _register() -> dict[str, type[PortalSpider]]:
    # A broken profile file gets no spider; ``govcrawl sites`` / ``crawl NAME`` report it.
    classes = {name: spider_class(profile) for name, profile in read_profiles().valid.items()}
    globals().update({cls.__name__: cls for cls in classes.values()})
    return classes


#: Spider classes by profile name.
PROFILE_SPIDERS = _register()
