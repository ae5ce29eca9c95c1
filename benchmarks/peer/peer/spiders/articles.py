from pathlib import Path

import scrapy
from scrapy.linkextractors import LinkExtractor


class ArticlesSpider(scrapy.Spider):
    """Every list page is a start URL (``-a start_file=FILE``, one URL a line): a plain
    LinkExtractor cannot follow TRS ``createPageHTML`` paging. Articles are what list pages link."""

    name = "articles"
    articles = LinkExtractor(allow=r"/t\d{8}_\d+\.html$")

    async def start(self):
        for url in Path(self.start_file).read_text().split():
            yield scrapy.Request(url)

    def parse(self, response):
        for link in self.articles.extract_links(response):
            yield response.follow(link.url, callback=self.parse_article)

    def parse_article(self, response):
        yield {"url": response.url, "title": response.css("title::text").get(),
               "html": response.text}
