"""vcrpy cassettes inside Scrapy: a download handler that replays and records them.

vcrpy patches ``http.client``, ``requests``, ``httpx``... but not Twisted, so Scrapy's own
downloads never reach it. :class:`CassetteDownloadHandler` plugs vcrpy's
:class:`~vcr.cassette.Cassette` (its matchers, record modes, YAML serializer and persister) in as
Scrapy's http/https download handler instead. The files it reads and writes are ordinary vcrpy
cassettes: ``vcr.use_cassette(path)`` + ``requests`` replays what Scrapy recorded, and Scrapy
replays what ``requests`` recorded.

Settings (see ``crawler/settings.py``):

* ``GOVCRAWL_CASSETTE`` -- one cassette file for every request, or
* ``GOVCRAWL_CASSETTE_DIR`` -- one cassette per spider, ``<dir>/<spider.name>.yaml``;
* ``GOVCRAWL_RECORD_MODE`` -- vcrpy's record mode: ``none`` (replay only), ``once``,
  ``new_episodes``, ``all``;
* ``GOVCRAWL_NETWORK_HANDLER`` -- class path of the handler that really downloads (default
  ``HTTP11DownloadHandler``; scrapy-playwright's handler works too).

With neither cassette setting, :meth:`CassetteDownloadHandler.from_crawler` returns the network
handler itself, so an ordinary crawl pays nothing for this module.

Cassettes written here are *plain*: bodies are stored decoded, without ``Content-Encoding``, with a
``Content-Length`` that fits. Replayed responses pass through :func:`vcr.filters.decode_response`,
so cassettes recorded by vcrpy + requests (which keep ``Content-Encoding: gzip`` next to a body
that is already decoded) replay too.

The open cassettes belong to their crawler (:class:`CassetteLibrary`): no process-wide table.
Building cassettes from saved pages is test and build tooling, not the crawler's:
``tests/cassettes.py`` (``write_cassette``, ``Interaction``), used by ``cassettes/build.py``.
"""

from __future__ import annotations

import atexit
import functools
import http
import logging
import os
import tempfile
import weakref
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from scrapy import signals
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.misc import build_from_crawler, load_object
from vcr import matchers as vcr_matchers
from vcr.cassette import Cassette
from vcr.filters import decode_response, remove_headers
from vcr.matchers import requests_match
from vcr.persisters.filesystem import FilesystemPersister
from vcr.record_mode import validate_record_mode
from vcr.request import Request as VcrRequest
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

__all__ = [
    "AtomicFilesystemPersister",
    "CassetteDownloadHandler",
    "CassetteError",
    "CassetteMiss",
    "load_cassette",
    "plain_response",
]

logger = logging.getLogger(__name__)
# vcrpy logs whole response bodies at INFO while it loads a cassette.
logging.getLogger("vcr").setLevel(logging.WARNING)

DEFAULT_NETWORK_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
#: vcrpy's default matching (method + URI): headers are ignored, so conditional GETs still match.
MATCH_ON = (vcr_matchers.method, vcr_matchers.uri)
#: Request headers never written to a cassette.
PRIVATE_REQUEST_HEADERS = ("Cookie", "Authorization", "Proxy-Authorization")
#: Flag set on every replayed response (``response.flags``).
REPLAY_FLAG = "cassette"


class CassetteMiss(Exception):
    """A request has no recorded response and the record mode forbids recording it."""

    def __init__(self, url: str, cassette_path: str | os.PathLike[str], record_mode: str = "none"):
        self.url = url
        self.cassette_path = str(cassette_path)
        self.record_mode = str(getattr(record_mode, "value", record_mode))
        super().__init__(
            f"No recorded response for {url} in cassette {self.cassette_path} "
            f"(record mode {self.record_mode!r} forbids recording it; "
            f"GOVCRAWL_RECORD_MODE=new_episodes would record it)"
        )


# --- vcrpy plumbing -------------------------------------------------------------------------


class AtomicFilesystemPersister(FilesystemPersister):
    """vcrpy's filesystem persister, but a save never leaves a half-written cassette behind, and a
    file that cannot be a cassette is an error, not an empty cassette to record over."""

    @classmethod
    def load_cassette(cls, cassette_path: str | os.PathLike[str], serializer: Any) -> Any:
        path = Path(cassette_path)
        if path.exists() and not path.is_file():
            raise CassetteError("not a file")
        if path.is_file():
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CassetteError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                                    f"offset {exc.start}): not a vcrpy cassette") from None
        return super().load_cassette(cassette_path, serializer)

    @staticmethod
    def save_cassette(cassette_path: str | os.PathLike[str], cassette_dict: dict[str, Any],
                      serializer: Any) -> None:
        data = serialize(cassette_dict, serializer)
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _header_text(value: bytes | str) -> str:
    # http.client (and so vcrpy + requests) reads header bytes as latin-1: keep the same convention.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _header_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # written by hand (tests/cassettes.py) with non-latin-1 text
        return value.encode("utf-8")


def plain_response(response: dict[str, Any]) -> dict[str, Any]:
    """A vcrpy response dict with its body decoded, and headers that say so.

    ``decode_response`` decompresses gzip/deflate/br (leaving an already decoded body as it is)
    and drops ``Content-Encoding``; ``Transfer-Encoding`` goes too and ``Content-Length`` is set
    to the body's length. An encoding vcrpy cannot decode (e.g. zstd) is kept with its header, so
    it still round-trips.
    """
    response = decode_response(response)
    headers = {k: v for k, v in response["headers"].items() if k.lower() != "transfer-encoding"}
    body = response["body"]["string"] or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    response["body"]["string"] = body
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    headers["Content-Length"] = [str(len(body))]
    response["headers"] = headers
    return response


class CassetteError(ValueError):
    """A cassette file that is not a usable vcrpy cassette (bad YAML, wrong structure)."""


def _problem(exc: Exception) -> str:
    """What is wrong with a cassette, in words (not a bare key name or a constructor's error)."""
    cause = exc.__cause__
    if isinstance(exc, ValueError) and isinstance(cause, yaml.constructor.ConstructorError):
        exc = cause  # vcrpy wraps the YAML loader's refusal of a tag
    if isinstance(exc, yaml.constructor.ConstructorError) and exc.problem:
        tag = exc.problem.rpartition("tag ")[2]
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"unsupported YAML tag {tag}{where} (not a vcrpy cassette)"
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or getattr(exc, "reason", None) or exc
        return " ".join(f"invalid YAML{where}: {what}".split())
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} key (not a vcrpy cassette)"
    if isinstance(exc, TypeError | AttributeError):
        return "its interactions are not request/response mappings (not a vcrpy cassette)"
    if "older version" in str(exc):
        return "a vcrpy cassette from before vcrpy 1.0 (no 'interactions' key): re-record it"
    return " ".join(str(exc).split()) or "not a vcrpy cassette"


def _usable_response(response: Any) -> bool:
    """True when a recorded response has what replay needs: a status code (100-999), headers
    of text values and a body mapping with its ``string``."""
    if not isinstance(response, dict):
        return False
    status, headers, body = response.get("status"), response.get("headers", {}), response.get(
        "body")
    code = status.get("code") if isinstance(status, dict) else None
    return (isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 999
            and isinstance(headers, dict)
            and all(isinstance(v, str | bytes) or (isinstance(v, list) and all(
                isinstance(x, str | bytes) for x in v)) for v in headers.values())
            and isinstance(body, dict) and isinstance(body.get("string", b""),
                                                      str | bytes | None))


def _check_interactions(cassette: Cassette) -> None:
    """Every recorded response has what replay needs (:func:`_usable_response`)."""
    for number, (_request, response) in enumerate(cassette.data, 1):
        if not _usable_response(response):
            raise CassetteError(f"interaction {number}: the response needs status.code "
                                "(100-999), headers and body.string (not a vcrpy cassette)")


def load_cassette(path: str | os.PathLike[str], record_mode: str = "none") -> Cassette:
    """Open a cassette the way the download handler does (vcrpy ``Cassette``, repeats allowed).

    A file that is not a usable cassette raises :class:`CassetteError` naming the file.
    """
    record_mode = validate_record_mode(record_mode)
    try:
        if record_mode == "none" and Path(path).is_file() and not Path(path).read_bytes().strip():
            raise CassetteError("empty file, no recorded interactions (a cut-off write?)")
        cassette = _load_cassette(path, record_mode)
        _check_interactions(cassette)
    except CassetteError as exc:
        raise CassetteError(f"cassette {os.fspath(path)}: {exc}") from None
    except OSError as exc:
        raise CassetteError(f"cassette {os.fspath(path)}: cannot read: "
                            f"{exc.strerror or exc}") from None
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CassetteError(f"cassette {os.fspath(path)}: {_problem(exc)}") from None
    return cassette


def _load_cassette(path: str | os.PathLike[str], record_mode: str) -> Cassette:
    return Cassette.load(
        path=str(path),
        record_mode=validate_record_mode(record_mode),
        match_on=MATCH_ON,
        persister=AtomicFilesystemPersister,
        serializer=yamlserializer,
        allow_playback_repeats=True,
        before_record_request=functools.partial(
            remove_headers, headers_to_remove=PRIVATE_REQUEST_HEADERS
        ),
    )


# --- Scrapy <-> vcrpy -----------------------------------------------------------------------


def vcr_request(request: Request) -> VcrRequest:
    """vcrpy's view of a Scrapy request (headers joined, latin-1 as http.client reads them)."""
    headers = {
        _header_text(name): _header_text(b", ".join(values))
        for name, values in request.headers.items()
    }
    return VcrRequest(request.method, request.url, request.body or None, headers)


def recorded_response(response: Response) -> dict[str, Any]:
    """A downloaded Scrapy response as a plain vcrpy response dict (body decoded)."""
    try:
        reason = http.HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    headers = {
        _header_text(name): [_header_text(v) for v in values]
        for name, values in response.headers.items()
    }
    recorded = {
        "status": {"code": response.status, "message": reason},
        "headers": headers,
        "body": {"string": response.body},
    }
    return plain_response(recorded)


def replayed_response(request: Request, recorded: dict[str, Any]) -> Response:
    """The Scrapy response for a recorded one: decoded, of the class its headers call for."""
    recorded = decode_response(recorded)
    headers = Headers()
    for name, values in recorded["headers"].items():
        if name.lower() != "transfer-encoding":
            headers.setlist(_header_bytes(name), [_header_bytes(v) for v in values])
    body = recorded["body"]["string"] or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    respcls = responsetypes.from_args(headers=headers, url=request.url, body=body)
    return respcls(
        url=request.url,
        status=int(recorded["status"]["code"]),
        headers=headers,
        body=body,
        flags=[REPLAY_FLAG],
        request=request,
    )


# --- open cassettes ---------------------------------------------------------------------------


class OpenCassette:
    """A vcrpy :class:`~vcr.cassette.Cassette` with an index of its interactions.

    vcrpy looks a request up by matching it against every interaction: with thousands of pages
    that is milliseconds per request, in the reactor thread. The index narrows the search to the
    interactions with the same method and URI; vcrpy's own matchers still decide.

    Replays follow the recording order: the n-th request for a (method, URI) gets the n-th
    recorded response, and once they are used up the last one repeats. The count belongs to
    this open cassette (one crawler), so every crawl replays from the first recorded version,
    in this process or another.
    """

    def __init__(self, cassette: Cassette):
        self.cassette = cassette
        self.path: str = cassette.path
        self._index: dict[tuple, list[int]] = {}
        self._indexed = 0
        self._replayed: Counter[tuple] = Counter()
        self._loaded = len(cassette.data)  # interactions read from the file (ours follow)
        self._stamp = _file_stamp(self.path)

    @staticmethod
    def _key(request: VcrRequest) -> tuple:
        u = request.parsed_uri  # what vcrpy's method + uri matchers compare
        return (request.method, u.scheme, u.netloc, u.path or "/", u.params, u.query, u.fragment)

    def _refresh(self) -> None:
        data = self.cassette.data
        for i in range(self._indexed, len(data)):
            self._index.setdefault(self._key(data[i][0]), []).append(i)
        self._indexed = len(data)

    def responses_for(self, request: VcrRequest) -> list[dict[str, Any]]:
        """The recorded responses that vcrpy's matchers match to ``request``, in recording order."""
        request = self.cassette.filter_request(request)
        self._refresh()
        data, match_on = self.cassette.data, self.cassette._match_on
        return [
            data[i][1]
            for i in self._index.get(self._key(request), ())
            if requests_match(request, data[i][0], match_on)
        ]

    def replay(self, request: VcrRequest) -> dict[str, Any] | None:
        """The next recorded response for ``request`` (see the class doc), or None."""
        responses = self.responses_for(request)
        if not responses:
            return None
        key = self._key(request)
        index = min(self._replayed[key], len(responses) - 1)
        self._replayed[key] += 1
        return responses[index]

    @property
    def write_protected(self) -> bool:
        return self.cassette.write_protected

    def record(self, request: VcrRequest, response: dict[str, Any]) -> None:
        self.cassette.append(request, response)

    def save(self) -> None:
        """Save what was recorded, atomically (only when something was).

        When the file changed since it was read (another crawler or process recording into the
        same cassette saved first), what it holds now is read again and this crawler's
        recordings are added to it, so neither loses the other's.
        """
        if not self.cassette.dirty:
            return
        try:
            if _file_stamp(self.path) != self._stamp:
                self._rebase()
            self.cassette._save()
            self._stamp = _file_stamp(self.path)
        except Exception:
            logger.exception("Could not save cassette %s", self.path)

    def _rebase(self) -> None:
        ours = self.cassette.data[self._loaded:]
        fresh = _load_cassette(self.path, self.cassette.record_mode)
        self._loaded = len(fresh.data)
        for request, response in ours:
            fresh.append(request, response)
        self.cassette = fresh
        self._index, self._indexed = {}, 0


def _file_stamp(path: str) -> tuple[int, int] | None:
    """What tells a file changed: (mtime in ns, size); None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class CassetteLibrary:
    """The cassettes one crawler uses, shared by its http and https handlers.

    Opens the cassette of the running spider on first use, and saves on ``spider_closed``,
    ``engine_stopped`` and when the handlers close (saves are atomic and only happen when
    something was recorded). While a cassette is open for recording, a process that stops
    without closing its crawler saves it at exit.
    """

    _by_crawler: weakref.WeakKeyDictionary[Crawler, CassetteLibrary] = weakref.WeakKeyDictionary()

    def __init__(self, crawler: Crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.file: str | None = settings.get("GOVCRAWL_CASSETTE") or None
        self.dir: str | None = settings.get("GOVCRAWL_CASSETTE_DIR") or None
        self.record_mode = validate_record_mode(settings.get("GOVCRAWL_RECORD_MODE") or "none")
        self._open: dict[str, OpenCassette] = {}
        self._current: tuple[Any, OpenCassette] | None = None
        self._at_exit = False
        crawler.signals.connect(self.save, signal=signals.spider_closed)
        crawler.signals.connect(self.close, signal=signals.engine_stopped)

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> CassetteLibrary:
        if crawler not in cls._by_crawler:
            cls._by_crawler[crawler] = cls(crawler)
        return cls._by_crawler[crawler]

    @staticmethod
    def configured(settings: BaseSettings) -> bool:
        return bool(settings.get("GOVCRAWL_CASSETTE") or settings.get("GOVCRAWL_CASSETTE_DIR"))

    def path(self) -> str:
        """The cassette of the running spider."""
        if self.file:
            return os.fspath(Path(self.file).expanduser())
        spider = self.crawler.spider
        if spider is None:
            raise RuntimeError("GOVCRAWL_CASSETTE_DIR needs a running spider to name the cassette")
        return os.fspath(Path(self.dir).expanduser() / f"{spider.name}.yaml")

    def cassette(self) -> OpenCassette:
        """The open cassette of the running spider."""
        spider = self.crawler.spider
        if self._current is None or self._current[0] is not spider:
            path = self.path()
            if path not in self._open:
                self._open[path] = OpenCassette(load_cassette(path, self.record_mode))
                if self.record_mode != "none" and not self._at_exit:
                    atexit.register(self.save)
                    self._at_exit = True
            self._current = (spider, self._open[path])
        return self._current[1]

    def save(self) -> None:
        for cassette in self._open.values():
            cassette.save()

    def close(self) -> None:
        self.save()
        self._open.clear()
        self._current = None
        if self._at_exit:
            atexit.unregister(self.save)
            self._at_exit = False


# --- the download handler ---------------------------------------------------------------------


class CassetteDownloadHandler:
    """Scrapy download handler that replays and records vcrpy cassettes.

    A recorded response is replayed when the request matches (method + URI, as vcrpy's defaults)
    and the record mode is not ``all``; otherwise, if the record mode allows, the request goes
    through the network handler and the response is recorded; otherwise it fails at once with
    :class:`CassetteMiss`. Stats: ``govcrawl/cassette/replayed``, ``govcrawl/cassette/recorded``,
    ``govcrawl/errors/cassette_miss``.
    """

    lazy = False

    def __init__(self, crawler: Crawler, network_cls: type | None = None):
        self.crawler = crawler
        self.stats = crawler.stats
        self.library = CassetteLibrary.for_crawler(crawler)
        self.record_mode = self.library.record_mode
        self._network_cls = network_cls or _network_handler_class(crawler.settings)
        # Built now when it may be used: some handlers (scrapy-playwright) hook engine_started.
        self._network = (
            None if self.record_mode == "none" else build_from_crawler(self._network_cls, crawler)
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        network_cls = _network_handler_class(crawler.settings)
        if not CassetteLibrary.configured(crawler.settings):
            return build_from_crawler(network_cls, crawler)  # no cassette: the network handler
        return cls(crawler, network_cls)

    async def download_request(self, request: Request) -> Response:
        cassette = self.library.cassette()
        vreq = vcr_request(request)
        if self.record_mode != "all" and (recorded := cassette.replay(vreq)) is not None:
            self.stats.inc_value("govcrawl/cassette/replayed")
            return replayed_response(request, recorded)
        if cassette.write_protected:
            self.stats.inc_value("govcrawl/errors/cassette_miss")
            raise CassetteMiss(request.url, cassette.path, self.record_mode)
        if self._network is None:
            self._network = build_from_crawler(self._network_cls, self.crawler)
        response = await self._network.download_request(request)
        cassette.record(vreq, recorded_response(response))
        self.stats.inc_value("govcrawl/cassette/recorded")
        return response

    async def close(self) -> None:
        self.library.close()
        if self._network is not None and hasattr(self._network, "close"):
            result = self._network.close()
            if hasattr(result, "__await__"):
                await result
            elif result is not None:  # Deferred-returning close() of older handlers
                from scrapy.utils.defer import maybe_deferred_to_future

                await maybe_deferred_to_future(result)


def _network_handler_class(settings: BaseSettings) -> type:
    path = settings.get("GOVCRAWL_NETWORK_HANDLER") or DEFAULT_NETWORK_HANDLER
    handler_cls = load_object(path)
    if isinstance(handler_cls, type) and issubclass(handler_cls, CassetteDownloadHandler):
        raise ValueError(f"GOVCRAWL_NETWORK_HANDLER={path!r} must be a real network handler")
    return handler_cls
