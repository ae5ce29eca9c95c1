"""Scrapy settings for govcrawl (``scrapy.cfg`` points here).

Our own settings are prefixed ``GOVCRAWL_``; the CLI maps its options onto them, and any of them can
be given to plain ``scrapy crawl`` with ``-s NAME=value``.
"""

BOT_NAME = "govcrawl"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# --- govcrawl -------------------------------------------------------------------------------
#: Where documents go: a local directory / ``file://`` URI, or ``s3://bucket/prefix``.
GOVCRAWL_ARCHIVE = "archive"
#: Local state (dedup database, spool of unsent archive writes, resumable job dirs).
GOVCRAWL_STATE_DIR = ".govcrawl"
#: Replay/record HTTP through a vcrpy cassette: one file for every request ...
GOVCRAWL_CASSETTE = None
#: ... or a directory holding one cassette per spider (``<dir>/<spider name>.yaml``).
GOVCRAWL_CASSETTE_DIR = None
#: vcrpy record mode: none (replay only), once, new_episodes, all.
GOVCRAWL_RECORD_MODE = "none"
#: The handler that really talks to the network (cassette handler delegates to it).
GOVCRAWL_NETWORK_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
#: A page that names the crawler and how to reach its operator (sent in the User-Agent).
GOVCRAWL_CONTACT_URL = "https://github.com/govcrawl/govcrawl"

#: Extraction worker processes: ``auto`` = one per CPU this process may use
#: (``os.sched_getaffinity``), a number to set it, 0 = inline on the reactor thread (what
#: ``govcrawl fetch`` of one URL uses: a pool would cost more than it saves).
GOVCRAWL_EXTRACT_WORKERS = "auto"

# --- politeness -----------------------------------------------------------------------------
USER_AGENT = f"govcrawl/0.1 (+{GOVCRAWL_CONTACT_URL})"
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS_PER_DOMAIN = 4
#: Longest robots.txt Crawl-delay honoured (seconds); see crawler.politeness.
GOVCRAWL_MAX_CRAWL_DELAY = 30.0
DOWNLOAD_TIMEOUT = 30
# Scrapy starts this many asyncio tasks for every callback's output; ours yield one item or one
# page of links, and 100 (the default) cost more than the work they share.
CONCURRENT_ITEMS = 16
RETRY_TIMES = 2
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
DEPTH_LIMIT = 8
CLOSESPIDER_PAGECOUNT = 0

# --- components -----------------------------------------------------------------------------
DOWNLOAD_HANDLERS = {
    "http": "crawler.cassette.CassetteDownloadHandler",
    "https": "crawler.cassette.CassetteDownloadHandler",
}
DOWNLOADER_MIDDLEWARES = {
    "crawler.politeness.CrawlDelayMiddleware": 110,
}
#: Makes the crawl id (GOVCRAWL_CRAWL_ID) once per crawler, before its settings freeze.
ADDONS = {"crawler.addons.CrawlId": 0}
EXTENSIONS = {
    "crawler.extensions.Progress": 500,
    "crawler.extensions.CrawlReport": 510,
}
#: Seconds between progress log lines (a terminal gets a live line instead).
GOVCRAWL_PROGRESS_INTERVAL = 10.0
ITEM_PIPELINES = {
    "pipelines.extract.ExtractionPipeline": 100,
    "pipelines.dedup.DedupPipeline": 300,
    "pipelines.archive.ArchivePipeline": 500,
}

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
