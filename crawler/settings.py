"""Scrapy settings for govcrawl (``scrapy.cfg`` points here).

Our own settings are prefixed ``GOVCRAWL_``; every one is declared here with its default and a
one-line doc. The CLI maps its options onto them; any of them can be given as ``-s NAME=value``
(also to plain ``scrapy crawl``) or as an environment variable of the same name, the same way for
every command (:func:`crawler.runner.project_settings`: defaults < environment < command line).

Read from the environment only (not settings): ``GOVCRAWL_PROFILES`` (profile file or directory,
:mod:`crawler.profiles`) and ``GOVCRAWL_DEBUG`` (show tracebacks, :mod:`crawler.cli`).
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

#: The id of the crawl (``crawls/<id>/`` in the archive); empty: made once per crawler by
#: crawler.addons.CrawlId (start time + spider name).
GOVCRAWL_CRAWL_ID = None
#: Write a JSON-lines log of responses and items (no bodies) to this path (debugging, tests).
GOVCRAWL_CRAWL_LOG = None
#: Skip (or, with ``revisit: true``, revalidate) documents the dedup state already knows.
GOVCRAWL_INCREMENTAL = True

# --- archive (crawler/archive, pipelines/archive.py) -------------------------------------------
#: While the store is down, how often (seconds) an item probes it again.
GOVCRAWL_ARCHIVE_PROBE_INTERVAL = 15.0
#: Archive writes run in this many threads, off the reactor.
GOVCRAWL_ARCHIVE_THREADS = 4
#: WARC segment size (bytes) before rotation.
GOVCRAWL_ARCHIVE_WARC_MAX_BYTES = 100 * 2**20
#: S3 payload checksum: ``sha256`` or ``md5``.
GOVCRAWL_S3_CHECKSUM = "sha256"
#: S3 addressing style: ``auto``, ``path`` or ``virtual`` (None: botocore's default).
GOVCRAWL_S3_ADDRESSING_STYLE = None
#: botocore's retry mode for the S3 archive (the only retry layer): ``adaptive`` also slows down
#: on 503 SlowDown; ``standard`` or ``legacy``.
GOVCRAWL_S3_RETRY_MODE = "adaptive"
#: S3 attempts per call in all (botocore's; then the write is spooled).
GOVCRAWL_S3_MAX_ATTEMPTS = 5
#: Objects from this many bytes up (WARC segments, large attachments) go to S3 by streaming
#: multipart upload (boto3's managed transfer) ...
GOVCRAWL_S3_MULTIPART_THRESHOLD = 16 * 2**20
#: ... in parts of this many bytes (at least 5 MiB).
GOVCRAWL_S3_MULTIPART_CHUNKSIZE = 8 * 2**20
#: S3 connect timeout (seconds).
GOVCRAWL_S3_CONNECT_TIMEOUT = 5
#: S3 read timeout (seconds).
GOVCRAWL_S3_READ_TIMEOUT = 60

# --- cluster (crawler/cluster.py) ---------------------------------------------------------------
#: ``redis://HOST:PORT/DB``: join the distributed crawl on that Redis (shared frontier, request
#: dupefilter and, unless GOVCRAWL_DEDUP_STATE is set, dedup state); None: a local crawl.
GOVCRAWL_REDIS_URL = None
#: Seconds a popped request stays leased without renewal; a dead worker's requests return to the
#: queue after this.
GOVCRAWL_REDIS_LEASE_TTL = 60.0
#: Longest wait (seconds) between two tries while Redis is unreachable.
GOVCRAWL_REDIS_RETRY_MAX = 30.0
#: Seconds a host lease (one request in transfer, crawler/cluster_politeness.py) lives without
#: renewal: a dead worker's share of a host's concurrency comes back after this.
GOVCRAWL_REDIS_HOST_LEASE_TTL = 10.0
#: Only work on requests already in the cluster's frontier: the spider's start requests are not
#: queued (what ``govcrawl worker`` runs its crawls with; crawler/cluster_feed.py).
GOVCRAWL_REDIS_JOIN = False
#: Sites one ``govcrawl worker`` crawls at once (each in a child process).
GOVCRAWL_REDIS_WORKER_CRAWLS = 4
#: Seconds between two looks of ``govcrawl worker`` at the sites the scheduler fed.
GOVCRAWL_REDIS_WORKER_POLL = 5.0

# --- dedup (crawler/dedup, pipelines/dedup.py) -------------------------------------------------
#: Dedup state URI; None: ``sqlite:///<GOVCRAWL_STATE_DIR>/dedup.sqlite``.
GOVCRAWL_DEDUP_STATE = None
#: Extra state backends, ``{scheme: class path}``.
GOVCRAWL_DEDUP_STATE_BACKENDS = {}
#: SQLite page cache of the dedup state (KiB).
GOVCRAWL_DEDUP_SQLITE_CACHE_KB = 8192
#: Near-duplicate threshold: estimated Jaccard similarity of character shingles.
GOVCRAWL_DEDUP_THRESHOLD = 0.9
#: MinHash permutations per signature.
GOVCRAWL_DEDUP_NUM_PERM = 64
#: Characters per shingle.
GOVCRAWL_DEDUP_SHINGLE = 5
#: Texts shorter than this (characters) add title and attachment names to their fingerprint.
GOVCRAWL_DEDUP_SHORT_TEXT = 200
#: LSH candidates verified per document at most.
GOVCRAWL_DEDUP_MAX_CANDIDATES = 200
#: Commit the dedup state at least this often (seconds), however busy the crawl: new items wait
#: at the dedup stage while the ones in flight are archived (crawler/dedup/service.py).
GOVCRAWL_STATE_COMMIT_INTERVAL = 5.0
#: ... or after this many writes since the last commit, whichever comes first.
GOVCRAWL_STATE_COMMIT_ITEMS = 200

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
# Scrapy checks every callback for a generator's `return <value>` by reading and parsing its
# source; its cache holds bound methods weakly, so it re-parses parse_article & co. again and again
# during a crawl. Our callbacks are covered by tests: skip that check.
WARN_ON_GENERATOR_RETURN_VALUE = False
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
    # Scrapy's redirects, failing at the first repeated URL (crawler.redirects), same places.
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.redirects.MetaRefreshMiddleware": 580,
    "crawler.redirects.RedirectMiddleware": 600,
}
#: JoinOnly is active only with GOVCRAWL_REDIS_JOIN (crawler.cluster_feed).
SPIDER_MIDDLEWARES = {
    "crawler.cluster_feed.JoinOnly": 10,
}
#: Makes the crawl id (GOVCRAWL_CRAWL_ID) once per crawler, before its settings freeze; with
#: GOVCRAWL_REDIS_URL, joins the cluster crawl (crawler.addons.Cluster).
ADDONS = {"crawler.addons.CrawlId": 0, "crawler.addons.Cluster": 10}
EXTENSIONS = {
    #: the crawler's dedup state: opened once, items in flight, commits (crawler/dedup/service.py)
    "crawler.dedup.service.StateService": 100,
    "crawler.extensions.Progress": 500,
    "crawler.extensions.CrawlReport": 510,
}
#: Seconds between progress log lines (a terminal gets a live line instead).
GOVCRAWL_PROGRESS_INTERVAL = 10.0
#: On a terminal, rewrite one progress line in place (the CLI's live display turns it off).
GOVCRAWL_PROGRESS_TTY = True
ITEM_PIPELINES = {
    "pipelines.extract.ExtractionPipeline": 100,
    "pipelines.dedup.DedupPipeline": 300,
    "pipelines.archive.ArchivePipeline": 500,
}

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
