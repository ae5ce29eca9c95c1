"""The fast MinHash and normalisation give exactly what datasketch and the plain definitions give.

Stored signatures and fingerprints from earlier crawls must stay valid, so these are equality
checks against the slow reference implementations, on the real seed texts and corpus articles.
"""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from crawler.dedup import DedupConfig
from crawler.dedup.minhash import (
    SCHEME,
    SEED,
    shingle_hashes,
    signature,
    signature_bytes,
    signature_from_bytes,
)
from crawler.dedup.normalise import (
    _boilerplate,
    _drop_table,
    drop_categories,
    nfkc,
    normalise_text,
)
from tests.dedup_fixtures import corpus_articles, edit_text, seed_texts


def real_texts() -> list[str]:
    return list(seed_texts()) + [a["text"] for a in corpus_articles()]


def datasketch_signature(normalised: str, num_perm: int, n: int) -> LeanMinHash:
    """What datasketch itself computes for the shingle set (identity hashfunc over the hashes)."""
    m = MinHash(num_perm=num_perm, seed=SEED, hashfunc=int, scheme=SCHEME)
    m.update_batch(shingle_hashes(normalised, n).tolist())
    return LeanMinHash(m)


def reference_normalise(text: str) -> str:
    """The definition of ``normalise_text`` written plainly (as it was before the fast path)."""
    if not text:
        return ""
    max_chars, pattern = _boilerplate()
    lines = unicodedata.normalize("NFKC", text).splitlines()
    kept = [ln for ln in (ln.strip() for ln in lines)
            if ln and not (len(ln) <= max_chars and pattern.match(ln))]
    return "".join(kept).casefold().translate(_drop_table())


@pytest.mark.parametrize("num_perm", sorted({DedupConfig().num_perm, 128}))
def test_signatures_equal_datasketch_on_real_texts(num_perm):
    shingle = DedupConfig().shingle
    texts = real_texts()
    assert len(texts) >= 10
    for text in texts:
        norm = normalise_text(text)
        ours = signature(norm, num_perm, shingle)
        theirs = datasketch_signature(norm, num_perm, shingle)
        assert isinstance(ours, LeanMinHash) and ours.scheme == theirs.scheme == SCHEME
        assert ours.hashvalues.dtype == theirs.hashvalues.dtype
        np.testing.assert_array_equal(ours.hashvalues, theirs.hashvalues)
        assert ours == theirs and ours.jaccard(theirs) == 1.0
        assert signature_from_bytes(signature_bytes(ours)) == ours


def test_short_and_empty_texts():
    assert signature("") is None
    for short in ("一", "通知", "关于印发"):  # shorter than a shingle: the whole text is one
        np.testing.assert_array_equal(signature(short).hashvalues,
                                      datasketch_signature(short, 64, 5).hashvalues)


def test_signatures_work_in_a_datasketch_lsh_beside_datasketch_minhashes():
    """Ours and datasketch's can be mixed in one MinHashLSH: an edit of a seed text is found."""
    text = max(seed_texts(), key=len)
    lsh = MinHashLSH(threshold=0.8, num_perm=64)
    lsh.insert("original", datasketch_signature(normalise_text(text), 64, 5))
    edited = signature(normalise_text(edit_text(text, 0.02)), 64, 5)
    assert lsh.query(edited) == ["original"]
    other = signature(normalise_text(min(seed_texts(), key=len)), 64, 5)
    assert lsh.query(other) == []


def test_nfkc_equals_unicodedata_for_every_code_point_in_context():
    """Chunks of consecutive code points (combining marks next to their neighbours), both
    orders, over the BMP (the fast path) and some supplementary planes (the plain path)."""
    points = [*range(0x10000), *range(0x1D400, 0x1D800), *range(0x2F800, 0x2FA20)]
    for size in (1, 5, 32):
        for start in range(0, len(points), size):
            chunk = "".join(map(chr, points[start:start + size]))
            for text in (chunk, chunk[::-1]):
                assert nfkc(text) == unicodedata.normalize("NFKC", text), hex(points[start])


def test_nfkc_equals_unicodedata_on_mixed_compatibility_text():
    """Random strings of full-width/half-width forms, characters whose NFKD is several
    characters, combining marks (incl. half-width kana voiced marks), Hangul jamo and CJK:
    composition across replaced characters is kept."""
    pool = [chr(c) for c in (*range(0xFF01, 0xFFEF), *range(0x0300, 0x0370), 0x3099, 0x309A,
                             *range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3),
                             *range(0x4E00, 0x4E40), *range(0x41, 0x5B), 0x2126, 0x212B, 0xF900,
                             0x00C5, 0x1E9B, 0x0323, 0x3000, 0x2002, 0x00A0, 0x2460,
                             # NFKD longer than one character (the expansion path), some
                             # ending in a combining mark that composes with what follows
                             0x2026, 0x2474, 0x2103, 0x2162, 0x3392, 0xFB01, 0x00BD, 0x0385,
                             0x01C4, 0x3250, 0x33FF, 0xFDFA)]
    rng = random.Random(13)
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        assert nfkc(text) == unicodedata.normalize("NFKC", text), text


def test_drop_categories_equals_translate_for_every_code_point():
    table = _drop_table()
    everything = "".join(chr(c) for c in range(0x110000))
    assert drop_categories(everything) == everything.translate(table)
    assert drop_categories("通知，请于3月1日前报名。") == "通知请于3月1日前报名"


def test_normalise_text_equals_its_plain_definition_on_real_texts():
    texts = real_texts()
    variants = [t.replace("，", ",").replace("\n", "\n\n ") for t in texts]
    for text in [*texts, *variants, "", " \n ", "ｶﾞｲﾄﾞ　１２３ＡＢＣ\u3000①"]:
        assert normalise_text(text) == reference_normalise(text)


def test_normalise_text_drops_the_boilerplate_lines_of_its_plain_definition():
    """Boilerplate lines among real text: alone, in runs, first and last, too long to count,
    near misses, one split over two lines, under several kinds of line break."""
    furniture = ["浏览次数：123", "【字号：大 中 小】", "【打印】【关闭】", "责任编辑：张三",
                 "上一篇：关于开展检查的通知", "分享到：微信 微博", "您是第", "2548696位访问者",
                 "您是第 2548696 位访问者", "扫一扫在手机打开当前页", "上一篇文章", "点击数：",
                 "45", "打印本页" * 30, "编辑：" + "很长的名字" * 5, "下一篇：" + "通知" * 50]
    rng = random.Random(5)
    sentences = [s for t in real_texts() for s in t.splitlines() if s.strip()][:400]
    for _ in range(300):
        lines = [rng.choice(furniture if rng.random() < 0.4 else sentences)
                 for _ in range(rng.randint(1, 12))]
        text = rng.choice(["\n", "\r\n", "\n \n", "\u2028"]).join(lines)
        assert normalise_text(text) == reference_normalise(text), lines
    assert normalise_text("通知正文\n浏览次数：123\n上一篇：旧通知") == "通知正文"


def test_state_lsh_batches_find_what_datasketch_lsh_finds(state_backend):
    """StateLSH reads and writes its buckets in batches: same candidates as datasketch's own
    in-memory MinHashLSH with the same bands, and as the state's one-bucket-at-a-time reads."""
    from crawler.dedup.minhash import StateLSH, band_params, signature_bytes
    from crawler.dedup.state import DedupState

    state = state_backend.open()
    ours = StateLSH(state, 0.9, 64)
    theirs = MinHashLSH(num_perm=64, params=band_params(0.9, 64))
    texts = real_texts()  # doc ids are hex, as make_doc_id's are
    for i, text in enumerate(texts):
        for j, variant in enumerate((text, edit_text(text, 0.02))):
            sig = signature(normalise_text(variant))
            ours.replace(f"{i:04x}{j:04x}", sig)
            theirs.insert(f"{i:04x}{j:04x}", sig)
    # re-indexed under another text: the bands of the signature it had are dropped
    ours.replace("00000000", signature(normalise_text(texts[1])),
                 signature_bytes(signature(normalise_text(texts[0]))))
    theirs.remove("00000000")
    theirs.insert("00000000", signature(normalise_text(texts[1])))
    for text in texts:
        sig = signature(normalise_text(edit_text(text, 0.01)))
        assert sorted(ours.query(sig)) == sorted(theirs.query(sig))
        keys = list(enumerate(ours._band_keys(sig)))
        assert [k for _, k in keys] == [ours._H(sig.hashvalues[start:end])
                                        for start, end in ours.hashranges]  # datasketch's keys
        assert state.buckets_get(keys) == DedupState.buckets_get(state, keys)
    state.commit()  # the same answers from the committed buckets
    for text in texts:
        sig = signature(normalise_text(edit_text(text, 0.01)))
        assert sorted(ours.query(sig)) == sorted(theirs.query(sig))
    state.close()
