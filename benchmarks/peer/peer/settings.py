"""``scrapy startproject``'s settings, with only what a loopback benchmark must change
(as for govcrawl in the same benchmark): no robots.txt, no politeness delay, per-host
concurrency = Scrapy's global default."""

BOT_NAME = "peer"
SPIDER_MODULES = ["peer.spiders"]
NEWSPIDER_MODULE = "peer.spiders"
ADDONS = {}

# startproject has ROBOTSTXT_OBEY = True, CONCURRENT_REQUESTS_PER_DOMAIN = 1, DOWNLOAD_DELAY = 1
ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS_PER_DOMAIN = 16
DOWNLOAD_DELAY = 0

ITEM_PIPELINES = {"peer.pipelines.TrafilaturaPipeline": 300}
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
