"""Byte decoding as a browser would do it, with the fixes government pages need."""

from __future__ import annotations

import codecs

from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

#: Legacy encodings a page may declare while its bytes are really UTF-8 (re-saved pages, CMS
# exports).
_LEGACY_CJK = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp1252", "latin-1", "iso8859-1"}


def _norm(enc: str | None) -> str | None:
    """Canonical codec name; gb2312/gbk -> gb18030 (superset; what browsers really use)."""
    if not enc:
        return None
    resolved = resolve_encoding(enc) or enc
    try:
        name = codecs.lookup(resolved).name
    except LookupError:
        return None
    return "gb18030" if name in ("gb2312", "gbk") else name


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode as a browser would: HTTP header charset > BOM > <meta charset> > detection.

    A declared legacy charset (GB2312, GBK, Big5, Latin-1 ...) is overruled when the
    bytes are valid, non-ASCII UTF-8: such pages were re-saved as UTF-8 and trusting the
    label gives mojibake.
    Returns ``(text, encoding)``.
    """
    bom_enc, bom = read_bom(body)
    body_nobom = body[len(bom) :] if bom_enc else body
    declared = (
        _norm(http_content_type_encoding(content_type) if content_type else None)
        or _norm(bom_enc)
        or _norm(html_body_declared_encoding(body_nobom))
    )
    if declared in ("utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be") and not bom_enc:
        declared = None  # a meta tag cannot really declare UTF-16 in an ASCII-compatible body
    if declared and declared != "utf-8":
        if declared in _LEGACY_CJK and not body_nobom.isascii() and _is_utf8(body_nobom):
            return body_nobom.decode("utf-8"), "utf-8"
        return body_nobom.decode(declared, errors="replace"), declared
    if _is_utf8(body_nobom):
        return body_nobom.decode("utf-8"), "utf-8"
    if declared == "utf-8" and not bom_enc:
        # labelled UTF-8 but not UTF-8 (a page re-encoded without its label): detect
        return _detect(body_nobom)
    if declared == "utf-8":
        return body_nobom.decode("utf-8", errors="replace"), "utf-8"
    return _detect(body_nobom)


def _detect(body: bytes) -> tuple[str, str]:
    """No usable declaration and not UTF-8: detect, preferring GB18030 for Chinese pages."""
    try:
        return body.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()
    enc = _norm(best.encoding) if best is not None else None
    enc = enc or "gb18030"
    return body.decode(enc, errors="replace"), enc
