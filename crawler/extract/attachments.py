"""Text of attachments (附件): PDF, DOCX, DOC, XLSX, XLS, recognised from their bytes.

Public API::

    sniff(data) -> Sniffed | None          # what the bytes are (never from a name or header)
    attachment_text(data) -> AttachmentText | None   # None: not a document type we read
    extract_bytes(body, url, headers) -> Document    # any downloaded bytes: HTML page, file, binary

The format table (magic numbers, zip members, OLE2 streams, binaries) is data:
``crawler/tables/file_formats.yaml``. Readers: pypdfium2 (PDF), python-docx (DOCX),
python-calamine (XLSX, XLS, ODS), antiword then catdoc (DOC, system packages).
Spreadsheets and tables come out one row per line, cells separated by a tab.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from functools import cache
from typing import Any

from crawler.extract.core import extract
from crawler.items import Document
from crawler.tables import load_table

#: Cell text: a line break between two CJK characters is a wrap (职位\n名称 -> 职位名称).
_CJK = r"[\u3000-\u9fff\uff00-\uffef]"
_CJK_BREAK = re.compile(rf"(?<={_CJK})\s*\n\s*(?={_CJK})")
_CELL_WS = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


class AttachmentError(Exception):
    """The bytes are a known document format but cannot be read (damaged, encrypted, no reader)."""


@dataclass(frozen=True)
class Sniffed:
    """What a file is: a document ``format`` (``pdf``, ``docx`` ...), or a ``binary``'s kind."""

    format: str
    binary: bool = False  # True: an image, archive, executable ... (not a document)


@dataclass
class AttachmentText:
    """The text of one attachment and what is known about it."""

    format: str
    text: str
    pages: int | None = None  # PDF pages
    sheets: int | None = None  # spreadsheet sheets
    needs_ocr: bool = False  # a PDF without a text layer (scanned)
    reader: str = ""

    @property
    def chars(self) -> int:
        return len(self.text)

    def meta(self) -> dict[str, Any]:
        """The metadata archived beside the text (``attachments/<sha>/text.json``)."""
        data = asdict(self)
        del data["text"]
        return {**data, "chars": self.chars}


@cache
def _table() -> dict[str, Any]:
    return load_table("file_formats")


def _magic(value: str) -> bytes:
    return value.encode("latin-1")


def _at(data: bytes, magic: str, offset: int = 0) -> bool:
    raw = _magic(magic)
    return data[offset:offset + len(raw)] == raw


def sniff(data: bytes) -> Sniffed | None:
    """Recognise ``data`` by its bytes: a document format, a binary, or None (text, HTML ...)."""
    table = _table()
    head = data[:2048]
    containers = table["containers"]
    if _at(head, containers["pdf"]["magic"]):
        return Sniffed("pdf")
    if _at(head, containers["zip"]["magic"]):
        found = _zip_format(data)
        if found:
            return Sniffed(found)
    if _at(head, containers["ole2"]["magic"]):
        found = _ole2_format(data)
        return Sniffed(found) if found else Sniffed("OLE2 file of unknown format", binary=True)
    for entry in table["binaries"]:
        if _at(head, entry["magic"], entry.get("offset", 0)) and (
                "also" not in entry or _at(head, entry["also"], entry["also_offset"])):
            return Sniffed(entry["kind"], binary=True)
    # PDF readers accept a header anywhere in the first 1024 bytes (after other formats: a zip
    # or an image may hold a PDF's first bytes within its own first kilobyte)
    if _magic(containers["pdf"]["magic"]) in head[:containers["pdf"]["search"]]:
        return Sniffed("pdf")
    if _unknown_binary(data):
        return Sniffed("binary data of no known format", binary=True)
    return None


#: C0 control bytes text does not use (tab, LF, VT, FF, CR and ESC are allowed), and DEL.
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _unknown_binary(data: bytes) -> bool:
    """True when bytes without a known magic are no text: too many control bytes (fonts,
    encrypted or compressed data, random bytes); see ``unknown_binary`` in the table."""
    rule = _table()["unknown_binary"]
    sample = data[:rule["sample"]]
    if not sample or sample.startswith(_BOMS):
        return False
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    if controls <= rule["max_control_share"] * len(sample):
        return False
    # UTF-16 text without a BOM: its NULs (the high bytes of ASCII) are its control bytes, all
    # on one side
    nuls = [i % 2 for i, byte in enumerate(sample) if byte == 0]
    utf16 = bool(nuls) and len(nuls) >= controls * rule["utf16_parity"] and max(
        nuls.count(0), nuls.count(1)) >= rule["utf16_parity"] * len(nuls)
    return not utf16


def _zip_format(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype").decode("ascii", "replace").strip() \
                if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    for rule in _table()["zip_formats"]:
        if "members" in rule and all(m in names for m in rule["members"]):
            return rule["format"]
        if "mimetype" in rule and mimetype == rule["mimetype"]:
            return rule["format"]
    return None


def _ole2_format(data: bytes) -> str | None:
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(path) for path in ole.listdir()}
    except (OSError, ValueError, IndexError, TypeError):
        return None
    for rule in _table()["ole2_formats"]:
        if all(s in streams for s in rule["streams"]):
            return rule["format"]
    return None


def attachment_text(data: bytes) -> AttachmentText | None:
    """The text of a document file, or None when ``data`` is not a format we read.

    Raises :class:`AttachmentError` for a file of a known format that cannot be read.
    """
    sniffed = sniff(data)
    if sniffed is None or sniffed.binary:
        return None
    reader = _table()["readers"].get(sniffed.format)
    if reader is None:
        return None
    try:
        result = _READERS[reader](data)
    except AttachmentError:
        raise
    except Exception as exc:  # a damaged file must not stop a crawl
        raise AttachmentError(f"cannot read {sniffed.format}: {type(exc).__name__}: {exc}") from exc
    result.format = sniffed.format
    result.text = _BLANK_LINES.sub("\n\n", result.text).strip()
    return result


# --- readers ----------------------------------------------------------------------------------


def _read_pdf(data: bytes) -> AttachmentText:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise AttachmentError(f"cannot open PDF: {exc}") from exc
    try:
        pages: list[str] = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_bounded()
            textpage.close()
            page.close()
            lines = (line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n")
                     .split("\n"))
            pages.append("\n".join(line for line in lines if line))
        count = len(pdf)
    finally:
        pdf.close()
    text = "\n".join(p for p in pages if p)
    solid = len(_CELL_WS.sub("", text))
    needs_ocr = count > 0 and solid < _table()["ocr_min_chars_per_page"] * count
    return AttachmentText("pdf", text, pages=count, needs_ocr=needs_ocr, reader="pypdfium2")


def _check_unpacked(data: bytes) -> None:
    limit = _table()["max_unpacked_bytes"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > limit:
            raise AttachmentError(f"unpacks to more than {limit} bytes")


def cell_text(value: str) -> str:
    """One table cell on one line: CJK wraps joined, other whitespace runs made one space."""
    return _CELL_WS.sub(" ", _CJK_BREAK.sub("", value)).strip()


def _row_line(cells: list[str]) -> str:
    while cells and not cells[-1]:
        cells.pop()
    return "\t".join(cells)


def _read_docx(data: bytes) -> AttachmentText:
    import docx
    from docx.table import Table, _Cell

    _check_unpacked(data)
    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []

    def table_lines(table: Table) -> None:
        for tr in table._tbl.tr_lst:
            # the row's own <w:tc> elements: a merged cell once, not once per grid column
            line = _row_line([cell_text(_Cell(tc, table).text) for tc in tr.tc_lst])
            if line:
                lines.append(line)

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            table_lines(block)
        else:
            text = block.text.strip()
            if text:
                lines.append(text)
    return AttachmentText("docx", "\n".join(lines), reader="python-docx")


def _spreadsheet_value(value: Any) -> str:
    """A cell as a spreadsheet shows it: 2.68 (not 2.6799999999999997), 3 (not 3.0)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time() else value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return cell_text(str(value))


def _read_spreadsheet(data: bytes) -> AttachmentText:
    import python_calamine

    if data[:4] == b"PK\x03\x04":
        _check_unpacked(data)
    workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    blocks: list[str] = []
    for name in workbook.sheet_names:
        rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=True)
        lines = [line for line in (_row_line([_spreadsheet_value(v) for v in row]) for row in rows)
                 if line]
        if lines:
            blocks.append("\n".join(lines))
    return AttachmentText("xls", "\n\n".join(blocks), sheets=len(workbook.sheet_names),
                          reader="python-calamine")


def _run_reader(command: list[str], data: bytes) -> str | None:
    """Run a system reader on ``data`` (in a temporary file); its UTF-8 output, or None."""
    if shutil.which(command[0]) is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".doc") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            done = subprocess.run([*command, tmp.name], capture_output=True,
                                  timeout=_table()["reader_timeout"], check=False)
        except subprocess.TimeoutExpired:
            return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def _read_word97(data: bytes) -> AttachmentText:
    """Word 97-2003 (also WPS-saved and fast-saved): antiword, else catdoc."""
    for reader, command in (("antiword", ["antiword", "-w", "0", "-m", "UTF-8.txt"]),
                            ("catdoc", ["catdoc", "-w", "-d", "utf-8"])):
        out = _run_reader(command, data)
        if out is not None and out.strip():
            lines = (line.strip() for line in out.splitlines())
            text = "\n".join(line for line in lines if line)
            return AttachmentText("doc", text, reader=reader)
    if not (shutil.which("antiword") or shutil.which("catdoc")):
        raise AttachmentError("reading .doc needs antiword or catdoc (apt-get install antiword)")
    raise AttachmentError("antiword and catdoc could not read this Word file")


_READERS = {"pdf": _read_pdf, "docx": _read_docx, "spreadsheet": _read_spreadsheet,
            "word97": _read_word97}


# --- any downloaded bytes ---------------------------------------------------------------------


def extract_bytes(body: bytes, url: str,
                  headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                  status: int | None = None) -> Document:
    """A :class:`Document` from whatever was downloaded, recognised from its bytes.

    An HTML (or text) page goes through :func:`crawler.extract.extract`; a document file gives
    its text (``format``, ``pages``, ``needs_ocr``); an image, archive or executable is not a
    document (finding ``binary_not_document``).
    """
    sniffed = sniff(body)
    if sniffed is None:
        doc = extract(body, url, headers, status)
        doc.format = "html"
        return doc
    if sniffed.binary:
        return Document(url=url, is_document=False, format=sniffed.format,
                        findings=["binary_not_document"])
    try:
        result = attachment_text(body)
    except AttachmentError as exc:
        return Document(url=url, is_document=False, format=sniffed.format,
                        findings=["unreadable_file"], meta={"error": str(exc)})
    if result is None:  # a document format without a reader (pptx, ofd ...)
        return Document(url=url, is_document=False, format=sniffed.format,
                        findings=["no_reader"])
    return Document(url=url, text=result.text, format=result.format, pages=result.pages,
                    sheets=result.sheets, needs_ocr=result.needs_ocr,
                    is_document=bool(result.text) or result.needs_ocr)


# --- notices whose body is only attachments -----------------------------------------------------


@cache
def _notice_rules() -> tuple[re.Pattern[str], re.Pattern[str]]:
    from crawler.extract.lexicon import load

    lexicon = load("attachment_notice")
    pointers = re.compile("|".join(f"(?:{p})" for p in lexicon["pointer_lines"]))
    return pointers, re.compile(lexicon["name_label"])


def _stem(name: str) -> str:
    return re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name.strip())


def attachment_only(doc: Document) -> bool:
    """True when ``doc`` links attachments and its body says nothing else: empty, or only
    pointers to them (详见附件, 附件1：<its name>) -- crawler/lexicons/attachment_notice.yaml."""
    if not doc.attachments:
        return False
    pointers, label = _notice_rules()
    names = {n for a in doc.attachments for n in (a.get("name") or "", _stem(a.get("name") or ""))}
    names.discard("")
    for raw in doc.text.splitlines():
        line = re.sub(r"[。.！!；;\s]+$", "", raw.strip())
        if not line or pointers.search(line):
            continue
        named = label.sub("", line)
        if {line, named, _stem(line), _stem(named)} & names:
            continue
        return False
    return True


def add_attachment_texts(doc: Document, found: Iterable[tuple[str, str | None, Any]]
                         ) -> list[dict[str, str]]:
    """Give an attachment-only notice its attachments' text: ``found`` holds ``(link url,
    sha256, AttachmentText | None)`` in the page's order. Sets ``doc.attachment_text``, makes the
    notice a document and adds the finding ``attachment_only`` when there is text; returns the
    sources used (``{url, sha256, format}``)."""
    parts, sources = [], []
    for url, sha, result in found:
        if result is not None and result.text:
            parts.append(result.text)
            sources.append({"url": url, "sha256": sha, "format": result.format})
    doc.attachment_text = "\n\n".join(parts)
    if doc.attachment_text:
        if not doc.is_document and not doc.challenge:
            doc.is_document = True  # an empty body, but its attachments are the content
        doc.findings = list(dict.fromkeys([*doc.findings, "attachment_only"]))
    return sources
