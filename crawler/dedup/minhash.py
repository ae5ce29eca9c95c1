"""MinHash signatures of normalised text and an LSH index whose buckets live in the dedup state.

Signatures are datasketch ``MinHash`` values (scheme ``affine32``, seed 1) over character n-gram
shingles of the normalised text. Shingles are hashed with numpy (a polynomial hash over code
points, folded to 32 bits); what datasketch's ``MinHash(hashfunc=int).update_batch`` does with
those hashes (MurmurHash3 finalizer, ``a * h + b mod 2**32`` per permutation, min over shingles)
is done here in one numpy expression over all shingles x permutations, with the permutations
cached per ``num_perm``: the values are bit-for-bit datasketch's (see tests/test_dedup.py), the
result is a datasketch ``LeanMinHash``, and stored signatures stay valid.

:class:`StateLSH` has datasketch ``MinHashLSH``'s bands, its hash tables being the state's bucket
table (see :class:`crawler.dedup.state.DedupState`), so the index costs no process memory per
document; a document's band keys are recomputed from its stored signature when it is re-indexed.
Band layout: with ``b`` bands of ``r`` rows and ``b > (1 - threshold) * num_perm``, two signatures
whose estimated Jaccard is at or above the threshold differ in fewer positions than there are
bands, so they always share a band: LSH adds no false negatives on top of the MinHash estimate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from crawler.dedup.state import DedupState

SCHEME = "affine32"
SEED = 1
_P = np.uint64(0x100000001B3)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(29)
_PERMUTATIONS: dict[int, tuple[np.ndarray, np.ndarray]] = {}
#: MurmurHash3 32-bit finalizer, as datasketch's ``affine32`` scheme pre-mixes its input.
_FMIX = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def _shingle_hashes(normalised: str, n: int) -> np.ndarray:
    """32-bit hashes of the character n-grams of ``normalised`` (whole text if shorter),
    one per position (repeats included)."""
    if not normalised:
        return np.empty(0, dtype=np.uint32)
    codes = np.frombuffer(normalised.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = codes.astype(np.uint64)
    if len(codes) < n:
        codes = np.pad(codes, (0, n - len(codes)))
    count = len(codes) - n + 1
    h = codes[:count].copy()  # = 0 * _P + codes[0 : count]
    for k in range(1, n):  # in place: no new array per step
        h *= _P
        h += codes[k : k + count]
    h ^= h >> _SHIFT
    return (h & _MASK32).astype(np.uint32)


def shingle_hashes(normalised: str, n: int = 5) -> np.ndarray:
    """Distinct 32-bit hashes of the character n-grams of ``normalised`` (the shingle set)."""
    return np.unique(_shingle_hashes(normalised, n))


def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's (a, b) for ``num_perm`` (seed 1, affine32), as uint32 column vectors."""
    if num_perm not in _PERMUTATIONS:
        a, b = MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations
        _PERMUTATIONS[num_perm] = (np.asarray(a, dtype=np.uint32).reshape(-1, 1).copy(),
                                   np.asarray(b, dtype=np.uint32).reshape(-1, 1).copy())
    return _PERMUTATIONS[num_perm]


def _fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2 = _FMIX
    h = h ^ (h >> s1)
    h *= m1
    h ^= h >> s2
    h *= m2
    h ^= h >> s1
    return h


def _lean(values: np.ndarray) -> LeanMinHash:
    sig = LeanMinHash.__new__(LeanMinHash)
    sig._initialize_slots(SEED, values, SCHEME)
    return sig


def hash_values(normalised: str, num_perm: int = 64, n: int = 5) -> np.ndarray | None:
    """The MinHash values (uint32, one per permutation) of ``normalised``, or None if empty."""
    hashes = _shingle_hashes(normalised, n)
    if not len(hashes):
        return None
    a, b = _permutations(num_perm)
    phv = a * _fmix32(hashes)  # (num_perm, shingles); uint32 wraps mod 2**32 as in datasketch
    phv += b
    return phv.min(axis=1)


def signature(normalised: str, num_perm: int = 64, n: int = 5) -> LeanMinHash | None:
    """The MinHash of ``normalised`` text (a datasketch ``LeanMinHash``), or None if empty."""
    values = hash_values(normalised, num_perm, n)
    return None if values is None else _lean(values)


def signature_bytes(sig: LeanMinHash) -> bytes:
    return np.asarray(sig.hashvalues, dtype="<u4").tobytes()


def signature_from_bytes(data: bytes) -> LeanMinHash:
    return _lean(np.frombuffer(data, dtype="<u4").astype(np.uint32))


def band_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows): more bands than the mismatches a signature at ``threshold`` can have."""
    bands = min(num_perm, math.floor((1.0 - threshold) * num_perm + 1e-9) + 1)
    bands = max(bands, 2)
    return bands, num_perm // bands


def _band_key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


class StateLSH(MinHashLSH):
    """``MinHashLSH``'s bands, with the state's bucket table as its hash tables (keys are
    doc_ids). A document's band keys are not stored apart: they are those of the signature its
    docs record holds, so whoever replaces or drops that signature passes it here."""

    def __init__(self, state: DedupState, threshold: float, num_perm: int):
        super().__init__(threshold=threshold, num_perm=num_perm,
                         params=band_params(threshold, num_perm), hashfunc=_band_key)
        self.hashtables, self.keys = [], None  # the state holds the tables: no memory per doc
        self.state = state

    def _band_keys(self, sig: LeanMinHash) -> list[bytes]:
        """``[self._H(sig.hashvalues[start:end]) for start, end in self.hashranges]`` with one
        byteswap of the whole signature."""
        values = np.asarray(sig.hashvalues)
        data, size = values.byteswap().tobytes(), values.itemsize
        return [_band_key(data[start * size : end * size]) for start, end in self.hashranges]

    def _check(self, sig: LeanMinHash) -> None:
        if len(sig) != self.h:
            raise ValueError(f"Expecting minhash with length {self.h}, got {len(sig)}")

    def replace(self, doc_id: str, sig: LeanMinHash, previous: bytes | None = None) -> None:
        """Index ``doc_id`` under ``sig``, dropping the bands of ``previous``, the signature
        (:func:`signature_bytes`) it was indexed under, if any."""
        self._check(sig)
        if previous is not None:
            self.unindex(doc_id, previous)
        self.state.buckets_add(enumerate(self._band_keys(sig)), doc_id)

    def unindex(self, doc_id: str, previous: bytes) -> None:
        """Drop ``doc_id`` from the buckets of ``previous``, the signature it is indexed under."""
        self.state.buckets_remove(enumerate(self._band_keys(signature_from_bytes(previous))),
                                  doc_id)

    def query(self, minhash: LeanMinHash) -> list[str]:
        """``MinHashLSH.query`` with the buckets read in one batch."""
        self._check(minhash)
        return list(self.state.buckets_get(enumerate(self._band_keys(minhash))))

    def candidates(self, sig: LeanMinHash, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        return [key for key in self.query(sig) if key not in skip]
