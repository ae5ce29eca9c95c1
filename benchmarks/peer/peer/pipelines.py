import trafilatura


class TrafilaturaPipeline:
    """The page's main text with trafilatura, in the item pipeline (on the reactor thread)."""

    def process_item(self, item):
        html = item.pop("html")
        item["text"] = trafilatura.extract(html, url=item["url"])
        return item
