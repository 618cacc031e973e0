"""Exact and near-duplicate detection over columns of records (vectorized, one implementation).

Method (the workflow and bench/data_pipeline.py both run exactly this code):
- Text normalisation (Arrow compute): NFKC, lower-case, every run of characters that are not
  Unicode letters or digits -> one space, stripped.
- Body of a record: normalised question + its normalised option texts sorted (so reordered
  options still match); the context is compared separately.
- Exact duplicates: identical normalised (context, body).
- Near duplicates: byte 5-gram shingles of the body, a one-permutation MinHash (128 bins, one
  64-bit hash per shingle, empty bins filled by rotation densification), LSH with 16 bands x 8
  rows (pairs at Jaccard 0.9 collide in some band with probability > 0.999). Every candidate is
  confirmed with the exact shingle Jaccard >= threshold, and contexts must both be empty or also
  reach the threshold, so a false LSH candidate never removes anything. The body Jaccard of all
  candidate pairs comes from sparse products of shingle incidence matrices (near_pairs), never
  pair by pair: templated questions form LSH groups of thousands (the full-scale rehearsal:
  60M candidate pairs, 5,403 records in its largest group), where a per-pair check took ~10 min
  and ~10 GB; tests/test_fast_paths.py checks near_pairs against the pairwise check.
- Records arrive in keep order (test, validation, train; then origin; then id). A record is
  removed when it matches an earlier kept record of the same task (a duplicate), or an earlier
  kept test record of any task while it is not itself a test record (a test leak: this is the
  decontamination, so the training side always goes).
"""

from __future__ import annotations

import logging
import os
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

LOG = logging.getLogger(__name__)
SHINGLE = 5
BINS = 128
BANDS = 16
ROWS = BINS // BANDS
EMPTY = np.uint32(0xFFFFFFFF)
THREADS = max(1, len(os.sched_getaffinity(0)))
CHUNK_RECORDS = 10_000  # signatures are computed chunk by chunk (THREADS at once) to bound memory
PAIR_BLOCK = 4_000_000  # member pairs (group size squared, summed) per sparse product
ENTRY_BLOCK = 20_000_000  # shingles per sparse product: with PAIR_BLOCK, bounds its memory
# every run of non-letters/digits becomes one space; the runs that are not one space already:
_CHANGING_RUN = r"[^\p{L}\p{N}]{2,}|[^\p{L}\p{N} ]"
NFKC_BLOCK = 1024  # strings per NFKC check (see _needs_nfkc)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_DENSIFY_STEP = np.uint32(0x2545F491)
_BAND_MULT = np.random.default_rng(20260306).integers(1, 2**63, ROWS, dtype=np.uint64) | 1


@dataclass(frozen=True)
class Removal:
    """One record dropped from the dataset and the kept record it matched."""

    id: str
    reason: str
    matched_id: str


@dataclass(frozen=True)
class DedupColumns:
    """The columns dedup needs, already in keep order.

    bodies are normalised (see module doc), an Arrow string array: only the few records that
    match another one ever become Python strings. contexts are raw and normalised only for
    records whose body matches another one (most records never need it, and contexts are long).
    """

    ids: Sequence[str]
    splits: Sequence[str]
    tasks: Sequence[str]
    contexts: Sequence[str | None]
    bodies: pa.Array


def _nfkc(texts: pa.Array) -> pa.Array:
    """NFKC of every element; only the (few) strings that change go through the normaliser."""
    needs = _needs_nfkc(texts)
    if not needs.any():
        return texts
    fixed = pc.utf8_normalize(texts.filter(pa.array(needs)), form="NFKC")
    return pc.replace_with_mask(texts, pa.array(needs), fixed)


def _needs_nfkc(texts: pa.Array) -> np.ndarray:
    """Mask of the strings that are not NFKC, by Python's check, NFKC_BLOCK strings per call."""
    # A newline never composes and no character decomposes to it, so NFKC treats the text on
    # either side of one independently: a block of strings, newline-terminated, is NFKC exactly
    # when each of them is, and only blocks that fail are checked string by string.
    newline, nothing = pa.scalar("\n", pa.large_string()), pa.scalar("", pa.large_string())
    lines = pc.binary_join_element_wise(texts, newline, nothing)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    data = lines.buffers()[2].to_pybytes() if len(lines) else b""
    needs: np.ndarray = np.zeros(len(texts), dtype=bool)
    for start in range(0, len(texts), NFKC_BLOCK):
        stop = min(start + NFKC_BLOCK, len(texts))
        block = data[offsets[start] : offsets[stop]].decode("utf-8")
        if not unicodedata.is_normalized("NFKC", block):
            part = texts.slice(start, stop - start).to_pylist()
            needs[start:stop] = [not unicodedata.is_normalized("NFKC", t) for t in part]
    return needs


def _normalize_chunk(texts: pa.Array) -> pa.Array:
    folded = pc.utf8_lower(_nfkc(pc.fill_null(texts, "")))
    # only the runs that change are matched: a lone space already is its own replacement, and
    # skipping those (most runs, between words) makes the Arrow regex pass about four times faster
    collapsed = pc.replace_substring_regex(folded, _CHANGING_RUN, " ")
    return pc.utf8_trim_whitespace(collapsed)


def normalize_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Normalised text of every element (nulls become empty strings), chunks on all cores."""
    texts = texts.cast(pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    step = max(1, -(-len(texts) // (4 * THREADS)))
    chunks = [texts.slice(start, step) for start in range(0, len(texts), step)] or [texts]
    with ThreadPoolExecutor(THREADS) as pool:  # Arrow kernels release the GIL
        parts = list(pool.map(_normalize_chunk, chunks))
    return pa.concat_arrays(parts)


def normalize_text(text: str | None) -> str:
    """Normalised form of one text (same code as the columnar path)."""
    return normalize_array(pa.array([text], type=pa.large_string()))[0].as_py()


def bodies_from_columns(questions: pa.Array, options: pa.Array) -> pa.Array:
    """Body text per record: normalised question, then sorted normalised options, ' | '-joined."""
    norm_q = normalize_array(questions)
    options = options.combine_chunks() if isinstance(options, pa.ChunkedArray) else options
    lengths = pc.fill_null(pc.list_value_length(options), 0).to_numpy().astype(np.int64)
    flat = normalize_array(pc.list_flatten(options).field("text"))
    owner: np.ndarray = np.repeat(np.arange(len(norm_q), dtype=np.int64), lengths)
    # UTF-8 byte order is code point order, so this sorts each record's options as sorted() does
    by_owner = pa.table({"owner": owner, "text": flat})
    order = pc.sort_indices(by_owner, [("owner", "ascending"), ("text", "ascending")]).to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths + 1)])
    is_question = np.zeros(starts[-1], dtype=bool)
    is_question[starts[:-1]] = True
    picks = np.empty(starts[-1], dtype=np.int64)  # into [questions..., options...]
    picks[is_question] = np.arange(len(norm_q))
    picks[~is_question] = len(norm_q) + order
    values = pa.concat_arrays([norm_q, flat]).take(pa.array(picks))
    parts = pa.LargeListArray.from_arrays(pa.array(starts), values)
    return pc.binary_join(parts, pa.scalar(" | ", pa.large_string()))


def _packed_grams(data: np.ndarray) -> np.ndarray:
    """The 5-byte window starting at every position of a byte array, as integers (little end)."""
    count = data.size - SHINGLE + 1
    padded: np.ndarray = np.zeros(data.size + 8, dtype=np.uint8)
    padded[: data.size] = data
    windows = np.ndarray((count,), dtype="<u8", buffer=padded, strides=(1,))  # unaligned view
    return windows & np.uint64((1 << (8 * SHINGLE)) - 1)


def shingles(text: str) -> np.ndarray:
    """Sorted unique byte 5-grams of a text, each packed into an integer."""
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    if data.size < SHINGLE:
        data = np.pad(data, (0, SHINGLE - data.size))
    return np.unique(_packed_grams(data))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique shingle arrays."""
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def _mix(values: np.ndarray) -> np.ndarray:
    h = values * _MIX1
    h ^= h >> np.uint64(32)
    h *= _GOLDEN
    return h


def _chunk_grams(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(record index, packed 5-gram) of every shingle position of a chunk of texts."""
    short = pc.less(pc.binary_length(texts), SHINGLE)  # padded to 5 characters, as shingles()
    array = pc.if_else(short, pc.utf8_rpad(texts, SHINGLE, "\0"), texts).cast(pa.large_string())
    bounds = np.frombuffer(array.buffers()[1], dtype=np.int64)
    offsets = bounds[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    grams = _packed_grams(data)
    valid: np.ndarray = np.ones(grams.size, dtype=bool)
    tails = (offsets[1:, None] - np.arange(1, SHINGLE, dtype=np.int64)[None, :]).ravel()
    valid[tails[tails < grams.size]] = False  # windows that cross into the next record
    owner: np.ndarray = np.repeat(
        np.arange(len(array), dtype=np.int32), np.diff(offsets) - (SHINGLE - 1)
    )
    return owner, grams[valid]


def signatures(texts: pa.Array | Sequence[str]) -> np.ndarray:
    """One-permutation MinHash signatures (len(texts) x BINS, uint32) with densification."""
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    out: np.ndarray = np.empty((len(texts), BINS), dtype=np.uint32)
    starts = range(0, len(texts), CHUNK_RECORDS)
    chunks = [texts.slice(start, CHUNK_RECORDS) for start in starts]
    with ThreadPoolExecutor(THREADS) as pool:  # numpy releases the GIL on these array passes
        for start, sig in zip(starts, pool.map(_chunk_signatures, chunks), strict=True):
            out[start : start + sig.shape[0]] = sig
    return out


def _chunk_signatures(chunk: pa.Array) -> np.ndarray:
    """Signatures of one chunk of texts (CHUNK_RECORDS x BINS fits int32 slot numbers)."""
    owner, grams = _chunk_grams(chunk)
    h = _mix(grams)
    slot = owner * np.int32(BINS) + (h >> np.uint64(64 - 7)).astype(np.int32)
    sig: np.ndarray = np.full(len(chunk) * BINS, EMPTY, dtype=np.uint32)
    np.minimum.at(sig, slot, h.astype(np.uint32) & np.uint32(0xFFFFFFFE))  # the low 32 bits
    return _densify(sig.reshape(len(chunk), BINS))


def _densify(sig: np.ndarray) -> np.ndarray:
    """Rotation densification: an empty bin takes the next non-empty bin's value + a step."""
    rows = np.flatnonzero((sig == EMPTY).any(axis=1))
    if rows.size == 0:
        return sig
    part = sig[rows]
    cols: np.ndarray = np.arange(2 * BINS, dtype=np.int32)
    filled = np.tile(part != EMPTY, 2)
    nearest = np.where(filled, cols, 4 * BINS)
    nearest = np.minimum.accumulate(nearest[:, ::-1], axis=1)[:, ::-1][:, :BINS]
    distance = (nearest - cols[:BINS]).astype(np.uint32)
    borrowed = np.take_along_axis(part, nearest % BINS, axis=1)
    sig[rows] = borrowed + distance * _DENSIFY_STEP
    return sig


def band_keys(sig: np.ndarray) -> np.ndarray:
    """64-bit key per (record, band): records sharing a key in a band are LSH candidates."""
    bands: np.ndarray = sig.reshape(sig.shape[0], BANDS, ROWS).astype(np.uint64)
    return _mix((bands * _BAND_MULT).sum(axis=2, dtype=np.uint64))


def candidate_groups(keys: np.ndarray) -> list[np.ndarray]:
    """Groups (ascending record indexes, size >= 2) of records sharing a band key."""
    groups = []
    for column in np.ascontiguousarray(keys.T):  # one band's keys, contiguous
        # an unstable sort is several times faster on 64-bit keys; groups are sorted after
        order = np.argsort(column)
        sorted_keys = column[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, sorted_keys.size])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            groups.append(np.sort(order[start : start + size]))
    return groups


def _reason(kind: str, split: str, matched_split: str) -> str:
    leak = matched_split == "test" and split != "test"
    return f"test_leak_{kind}" if leak else f"duplicate_{kind}"


def _may_match(cols: DedupColumns, later: int, earlier: int) -> bool:
    if cols.tasks[later] == cols.tasks[earlier]:
        return True
    return cols.splits[earlier] == "test" and cols.splits[later] != "test"


def exact_removals(cols: DedupColumns) -> dict[int, int]:
    """Removed index -> kept index it duplicates exactly (first eligible earlier kept one)."""
    codes = pc.dictionary_encode(cols.bodies).indices.to_numpy(zero_copy_only=False)
    repeated = np.flatnonzero(np.bincount(codes, minlength=1)[codes] > 1)  # only these can match
    by_body: dict[int, list[int]] = defaultdict(list)
    for i, code in zip(repeated.tolist(), codes[repeated].tolist(), strict=True):
        by_body[code].append(i)
    removed: dict[int, int] = {}
    contexts = ContextCache(cols)
    contexts.prefetch(repeated.tolist())
    for members in by_body.values():
        kept_by_context: dict[str, list[int]] = defaultdict(list)
        for i in members:
            bucket = kept_by_context[contexts.text(i)]
            match = next((k for k in bucket if _may_match(cols, i, k)), None)
            if match is None:
                bucket.append(i)
            else:
                removed[i] = match
    return removed


class ContextCache:
    """Normalised contexts and shingles, computed on first use."""

    def __init__(self, cols: DedupColumns) -> None:
        self.cols = cols
        self.texts: dict[int, str] = {}
        self.grams: dict[int, np.ndarray] = {}

    def prefetch(self, indices: Iterable[int]) -> None:
        """Normalise the contexts of these records in one columnar pass."""
        # one Arrow call for all of them: each call compiles the Unicode regex (~10 ms)
        todo = sorted({i for i in indices if i not in self.texts})
        raw = [self.cols.contexts[i] for i in todo]
        texts = normalize_array(pa.array(raw, type=pa.large_string())).to_pylist()
        for i, context, text in zip(todo, raw, texts, strict=True):
            self.texts[i] = text if context else ""

    def text(self, i: int) -> str:
        """Normalised context of record i ('' when absent)."""
        if i not in self.texts:
            raw = self.cols.contexts[i]
            self.texts[i] = normalize_text(raw) if raw else ""
        return self.texts[i]

    def shingles(self, i: int) -> np.ndarray:
        """Shingles of the normalised context of record i."""
        if i not in self.grams:
            self.grams[i] = shingles(self.text(i))
        return self.grams[i]


def near_removals(cols: DedupColumns, alive: np.ndarray, threshold: float) -> dict[int, int]:
    """Removed index -> earlier kept index it nearly duplicates, among the `alive` indexes."""
    started = time.perf_counter()
    texts = cols.bodies.take(pa.array(alive, type=pa.int64()))
    groups = candidate_groups(band_keys(signatures(texts)))
    LOG.info(
        "near-dedup: %d signatures, %d candidate groups in %.1f s",
        alive.size,
        len(groups),
        time.perf_counter() - started,
    )
    later, cand = near_pairs(texts, groups, threshold)
    LOG.info(
        "near-dedup: %d candidate pairs reach body Jaccard %s in %.1f s",
        later.size,
        threshold,
        time.perf_counter() - started,
    )
    earlier: dict[int, list[int]] = defaultdict(list)
    for b, a in zip(alive[later].tolist(), alive[cand].tolist(), strict=True):
        earlier[b].append(a)  # pairs come sorted by (later, candidate)
    removed: dict[int, int] = {}
    contexts = ContextCache(cols)
    contexts.prefetch({i for b, cands in earlier.items() for i in (b, *cands)})
    for b in sorted(earlier):
        for a in earlier[b]:
            if (
                a not in removed
                and _may_match(cols, b, a)
                and _contexts_near(contexts, a, b, threshold)
            ):
                removed[b] = a
                break
    return removed


def _contexts_near(contexts: ContextCache, a: int, b: int, threshold: float) -> bool:
    """Both contexts empty, or both present with shingle Jaccard >= threshold."""
    ca, cb = contexts.text(a), contexts.text(b)
    if not ca and not cb:
        return True
    if not ca or not cb:
        return False
    return jaccard(contexts.shingles(a), contexts.shingles(b)) >= threshold


def near_pairs(
    texts: pa.Array, groups: Sequence[np.ndarray], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(later, earlier) positions of the pairs in a group whose shingle Jaccard >= threshold.

    Equal to jaccard(shingles(texts[earlier]), shingles(texts[later])) >= threshold over every pair
    of every group (tests/test_fast_paths.py checks it), sorted by (later, earlier), each pair once.
    The intersections of a block of groups come from one sparse product X @ X.T, where a row of X
    is a group member's shingle set and a column a (group, shingle): no pair is a Python object,
    so a templated group of thousands of members costs seconds, not minutes, and little memory.
    """
    unique: dict[bytes, np.ndarray] = {}
    for group in groups:  # a group often repeats in several bands
        unique.setdefault(group.tobytes(), group)
    if not unique:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    members = np.unique(np.concatenate(list(unique.values())))
    indptr, grams = shingle_sets(texts.take(pa.array(members)))
    sizes = np.diff(indptr)
    found: list[np.ndarray] = []
    block: list[np.ndarray] = []
    products = entries = 0
    for group in unique.values():
        # asarray: numpy's stub picks searchsorted's scalar overload for an untyped ndarray
        rows = np.asarray(np.searchsorted(members, group))
        block.append(rows)
        products += rows.size * rows.size
        entries += int(sizes[rows].sum())
        if products >= PAIR_BLOCK or entries >= ENTRY_BLOCK:
            found.append(_block_pairs(block, indptr, grams, threshold))
            block, products, entries = [], 0, 0
    if block:
        found.append(_block_pairs(block, indptr, grams, threshold))
    keys = np.unique(np.concatenate(found))  # later * n + earlier, as member rows
    later, cand = np.divmod(keys, members.size)
    return members[later], members[cand]


def _block_pairs(
    block: list[np.ndarray], indptr: np.ndarray, grams: np.ndarray, threshold: float
) -> np.ndarray:
    """later * n + earlier (member rows) of the pairs within each group reaching the threshold."""
    rows = np.concatenate(block)
    group_of: np.ndarray = np.repeat(
        np.arange(len(block), dtype=np.uint64), [g.size for g in block]
    )
    lengths = np.diff(indptr)[rows]
    row_starts = np.concatenate([[0], np.cumsum(lengths)])
    where = np.repeat(indptr[rows] - row_starts[:-1], lengths) + np.arange(row_starts[-1])
    column_keys = (np.repeat(group_of, lengths) << np.uint64(8 * SHINGLE)) | grams[where]
    columns = np.unique(column_keys, return_inverse=True)[1].reshape(-1).astype(np.int32)
    ones = np.ones(columns.size, dtype=np.int32)
    matrix = sparse.csr_matrix((ones, columns, row_starts), shape=(rows.size, columns.max() + 1))
    right = matrix.T.tocsr()
    # a stripe of rows at a time: its product has at most stripe x (largest group) entries, so
    # even one group of tens of thousands of members stays within PAIR_BLOCK entries at once
    stripe = max(1, PAIR_BLOCK // max(g.size for g in block))
    found = []
    for start in range(0, rows.size, stripe):
        product = (matrix[start : start + stripe] @ right).tocoo()
        earlier, later = product.row.astype(np.int64) + start, product.col.astype(np.int64)
        upper = later > earlier  # rows of a group are in record order
        earlier, later = earlier[upper], later[upper]
        inter = product.data[upper].astype(np.int64)
        union = lengths[earlier] + lengths[later] - inter
        near = inter / union >= threshold  # the float jaccard() computes: exact int -> float64
        found.append(rows[later[near]].astype(np.int64) * (indptr.size - 1) + rows[earlier[near]])
    return np.concatenate(found)


def shingle_sets(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, packed grams) of shingles(text) for every text: sorted unique per text."""
    starts = range(0, len(texts), CHUNK_RECORDS)
    chunks = [texts.slice(start, CHUNK_RECORDS) for start in starts]
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(_chunk_shingle_sets, chunks))
    counts = np.concatenate([c for c, _ in parts]) if parts else np.empty(0, dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    grams = np.concatenate([g for _, g in parts]) if parts else np.empty(0, dtype=np.uint64)
    return indptr, grams


def _chunk_shingle_sets(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(count per text, grams sorted per text) of a chunk of at most CHUNK_RECORDS texts."""
    array = pc.fill_null(chunk, "").cast(pa.large_string())
    bounds = np.frombuffer(array.buffers()[1], dtype=np.int64)
    offsets = bounds[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    windows = np.maximum(lengths - (SHINGLE - 1), 0)  # texts shorter than SHINGLE: see below
    owner: np.ndarray = np.repeat(np.arange(len(array), dtype=np.uint64), windows)
    first = np.concatenate([[0], np.cumsum(windows)])
    where = np.repeat(offsets[:-1] - first[:-1], windows) + np.arange(first[-1])
    grams = _packed_grams(np.concatenate([data, np.zeros(SHINGLE - 1, dtype=np.uint8)]))[where]
    short = np.flatnonzero(lengths < SHINGLE)  # one zero-padded gram each, as shingles() does
    if short.size:
        owner = np.concatenate([owner, short.astype(np.uint64)])
        padded = [shingles(array[int(i)].as_py())[0] for i in short]
        grams = np.concatenate([grams, np.array(padded, dtype=np.uint64)])
    keys = np.sort((owner << np.uint64(8 * SHINGLE)) | grams)
    # a sort and a neighbour test: np.unique's hash table is ~30 times slower on these keys
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    counts = np.bincount((keys >> np.uint64(8 * SHINGLE)).astype(np.int64), minlength=len(array))
    return counts, keys & np.uint64((1 << (8 * SHINGLE)) - 1)


def find_removals(cols: DedupColumns, threshold: float) -> list[tuple[int, int, str]]:
    """(removed index, matched index, reason) for every duplicate or leak, sorted by index."""
    exact = exact_removals(cols)
    alive = np.array([i for i in range(len(cols.ids)) if i not in exact], dtype=np.int64)
    near = near_removals(cols, alive, threshold)
    rows = [(i, m, _reason("exact", cols.splits[i], cols.splits[m])) for i, m in exact.items()]
    rows += [(i, m, _reason("near", cols.splits[i], cols.splits[m])) for i, m in near.items()]
    LOG.info("dedup: %d exact and %d near removals", len(exact), len(near))
    return sorted(rows)
