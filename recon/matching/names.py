"""Payer names against client and company names, without a loop over rows.

A name becomes a set of words: lower case, accents and umlauts folded (`Müller` = `MUELLER`),
titles and legal forms dropped (`Herr`, `Dr.`, `GmbH`, `B.V.`), punctuation gone. Two keys come
out of the word set, both independent of word order (`SMITH, JOHN` = `John Smith`):

- the *full* key: the words of two letters or more (initials left out);
- *initial* keys, one per word: that word plus the initials of the others (`J. Smith` meets
  `John Smith` on "smith + j").

Keys are sums of 64-bit word hashes, so equal word sets give equal keys whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

FULL: int = 2
INITIAL: int = 1

_TITLES = (
    "mr mrs ms miss mx dr prof sir madam herr frau hr fr dhr mevr mevrouw heer mme mlle monsieur "
    "madame sig sigra signor signora sr sra srta don dona dott ing dipl mag drs dra mgr me"
)
_LEGAL_FORMS = (
    "ltd limited gmbh mbh ag kg kgaa ohg gbr ug ev eg ek inh bv nv vof sa sas sarl sasu eurl spa "
    "srl snc sl slu llc inc incorporated corp corporation co company plc lp llp pty pte oy oyj ab "
    "as asa aps sro kft zrt bvba sprl se lda unipessoal sp z oo spj hb aktiebolag sti"
)
_PARTICLES = "and und et en the"
# letters NFKD leaves whole (Polish ł, Turkish dotless ı, ...) are folded by hand
_FOLDS = (
    ("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("æ", "ae"), ("ø", "oe"), ("å", "aa"),
    ("ł", "l"), ("ı", "i"), ("đ", "d"), ("ð", "d"), ("þ", "th"), ("œ", "oe"), ("ħ", "h"),
)  # fmt: skip

_FULL_TAG = np.uint64(0x9E3779B97F4A7C15)
_INITIAL_TAG = np.uint64(0xC2B2AE3D27D4EB4F)
_MIX = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class NameKeys:
    """Keys of names: one row per (name row, key), with the key's level (FULL or INITIAL)."""

    row: I64
    key: U64
    level: I8


def _large(values: pd.Series | pa.Array) -> pa.Array:
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.cast(array, pa.large_string()).fill_null("")


def _words(names: pd.Series | pa.Array) -> pa.ListArray:
    """Each name as a list of lower-case ASCII words (titles and legal forms still in)."""
    text = pc.utf8_lower(_large(names))
    ascii_only = pc.string_is_ascii(text)
    if not pc.all(ascii_only).as_py():
        # accents and umlauts, only where there are any: Müller → mueller, José → jose
        foreign = pc.invert(ascii_only)
        some = pc.filter(text, foreign)
        for umlaut, folded in _FOLDS:
            some = pc.replace_substring(some, umlaut, folded)
        some = pc.replace_substring_regex(
            pc.utf8_normalize(some, form="NFKD"), pattern=r"\p{Mn}", replacement=""
        )
        text = pc.replace_with_mask(text, foreign, some)
    # umlauts are written out by some banks and dropped by others (Müller, Mueller, Muller):
    # every spelling comes down to the bare vowel
    for pair, vowel in (("ae", "a"), ("oe", "o"), ("ue", "u"), ("aa", "a")):
        text = pc.replace_substring(text, pair, vowel)
    # a dot closes an abbreviation: B.V. → bv, J. Smith → j smith
    text = pc.replace_substring(text, ".", "")
    text = pc.replace_substring_regex(text, pattern=r"[^a-z]+", replacement=" ")
    return pc.split_pattern(text, pattern=" ")


def normalise_names(names: pd.Series | pa.Array) -> pa.Array:
    """Names as lower-case words separated by single spaces, titles and legal forms removed."""
    words = _words(names)
    flat, parent = _kept_words(words)
    joined = pd.Series(flat.to_numpy(zero_copy_only=False)).groupby(parent).agg(" ".join)
    out = np.full(len(words), "", dtype=object)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return pa.array(out, type=pa.large_string())


_STOP_SET = pa.array(
    sorted(set((_TITLES + " " + _LEGAL_FORMS + " " + _PARTICLES).split())), pa.large_string()
)


def _kept_words(words: pa.ListArray) -> tuple[pa.Array, I64]:
    flat = pc.list_flatten(words)
    parent = pc.list_parent_indices(words).to_numpy().astype(np.int64)
    keep = pc.and_(
        pc.greater(pc.utf8_length(flat), 0), pc.invert(pc.is_in(flat, value_set=_STOP_SET))
    )
    keep_np = keep.to_numpy(zero_copy_only=False)
    return flat.filter(keep), parent[keep_np]


def _hashes(words: pa.Array) -> U64:
    encoded = pc.dictionary_encode(words)
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    table = pd.util.hash_array(uniques, categorize=False).astype(np.uint64)
    return np.asarray(table[encoded.indices.to_numpy(zero_copy_only=False)], dtype=np.uint64)


def _segment_sums(values: U64, starts: I64, lengths: I64) -> U64:
    # wrapping uint64 sums per segment, through a running sum (exact modulo 2**64)
    running = np.concatenate(([np.uint64(0)], np.cumsum(values, dtype=np.uint64)))
    return np.asarray(running[starts + lengths] - running[starts], dtype=np.uint64)


def has_initial(names: pd.Series | pa.Array) -> npt.NDArray[np.bool_]:
    """Per name: one of its words is a lone initial (`E. LARSSON`, `Larsson E`)."""
    words = _words(names)
    flat, parent = _kept_words(words)
    initial = pc.equal(pc.utf8_length(flat), 1).to_numpy(zero_copy_only=False).astype(bool)
    out = np.zeros(len(words), dtype=bool)
    out[parent[initial]] = True
    return out


def name_keys(names: pd.Series | pa.Array) -> NameKeys:
    """Full and initial keys of each name, in no particular order (no words, no key)."""
    words = _words(names)
    flat, parent = _kept_words(words)
    n = len(words)
    counts = np.bincount(parent, minlength=n).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    if len(flat) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return NameKeys(empty, empty.astype(np.uint64), empty.astype(np.int8))
    word_hash = _hashes(flat)
    initial_hash = _hashes(pc.utf8_slice_codeunits(flat, 0, 1))
    is_full = (pc.utf8_length(flat).to_numpy(zero_copy_only=False) >= 2).astype(bool)
    with np.errstate(over="ignore"):
        full_sum = _segment_sums(np.where(is_full, word_hash, np.uint64(0)), starts, counts)
        full_count = np.bincount(parent, weights=is_full, minlength=n).astype(np.int64)
        initial_sum = _segment_sums(initial_hash, starts, counts)
        has_full = full_count > 0
        full_rows = np.flatnonzero(has_full)
        full_keys = full_sum[full_rows] + _FULL_TAG
        # one initial key per full word, for names of two words or more
        per_word = is_full & (counts[parent] >= 2)
        word_rows = parent[per_word]
        initial_keys = (
            word_hash[per_word] * _MIX
            + (initial_sum[word_rows] - initial_hash[per_word])
            + _INITIAL_TAG
        )
    glued_rows, glued_keys = _glued_keys(flat, counts)
    row = np.concatenate([full_rows, glued_rows, word_rows]).astype(np.int64)
    key = np.concatenate([full_keys, glued_keys, initial_keys]).astype(np.uint64)
    level = np.concatenate(
        [
            np.full(len(full_rows) + len(glued_rows), FULL, np.int8),
            np.full(len(word_rows), INITIAL, np.int8),
        ]
    )
    return NameKeys(row, key, level)


def _glued_keys(flat: pa.Array, counts: I64) -> tuple[I64, U64]:
    """A full key of the words written as one (`PIOTROWSKICONSULT` = `Piotrowski Consult`):
    banks that drop spaces. Only names of two words or more get one; a one-word name's full key
    is already the key of its word."""
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), flat)
    several = np.flatnonzero(counts >= 2)
    if not len(several):
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    joined = pc.binary_join(lists.take(pa.array(several)), pa.scalar("", pa.large_string()))
    with np.errstate(over="ignore"):
        keys = _hashes(joined) + _FULL_TAG
    return several.astype(np.int64), np.asarray(keys, dtype=np.uint64)
