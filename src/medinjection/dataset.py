"""Merge native/translated/synthetic records: exact and near dedup, test decontamination, splits.

Method (documented in docs and the removal reasons):
- Text normalisation: NFKC, casefold, every non-alphanumeric run -> one space, stripped.
- Exact duplicates: same sha256 of normalised (context, question, sorted option texts).
- Near duplicates: same context-free text (question + sorted options) with byte 5-gram shingle
  Jaccard >= threshold, AND contexts that are both empty or also >= threshold. Candidates come
  from MinHash (128 permutations) with LSH banding (16 bands x 8 rows: pairs at Jaccard 0.9 are
  candidates with probability > 0.999); every candidate is verified with the exact Jaccard, so
  the result never depends on a false positive.
- Greedy keep order: test before validation before train, then native, translated, synthetic,
  then id. A record matching an already kept one is removed; removing a train/validation record
  whose match is a test record is decontamination (reasons test_leak_exact / test_leak_near).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medinjection.records import ORIGINS, SPLITS, Record, read_records, write_records

LOG = logging.getLogger(__name__)
SHINGLE = 5
NUM_PERM = 128
BANDS = 16
ROWS = NUM_PERM // BANDS
_PRIME = np.uint64(2**31 - 1)
_RNG = np.random.default_rng(20260306)  # fixed: signatures must not change between runs
_A = _RNG.integers(1, 2**31 - 1, NUM_PERM, dtype=np.uint64)
_B = _RNG.integers(0, 2**31 - 1, NUM_PERM, dtype=np.uint64)
SPLIT_RANK = {"test": 0, "validation": 1, "train": 2}
ORIGIN_RANK = {origin: i for i, origin in enumerate(ORIGINS)}
_NON_ALNUM = re.compile(r"[\W_]+")


def normalize_text(text: str | None) -> str:
    """NFKC + casefold + punctuation/whitespace runs collapsed to one space."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return _NON_ALNUM.sub(" ", folded).strip()


def body_text(record: Record) -> str:
    """Normalised question + sorted option texts (the near-duplicate text, context excluded)."""
    options = sorted(normalize_text(text) for _, text in record.options or ())
    return " | ".join([normalize_text(record.question), *options])


def exact_key(record: Record) -> str:
    """sha256 of normalised context + question + sorted options."""
    blob = normalize_text(record.context) + " || " + body_text(record)
    return hashlib.sha256(blob.encode()).hexdigest()


def shingles(text: str) -> np.ndarray:
    """Sorted unique byte 5-grams of a text, each packed into an integer."""
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if data.size < SHINGLE:
        data = np.pad(data, (0, SHINGLE - data.size))
    grams = np.zeros(data.size - SHINGLE + 1, dtype=np.uint64)
    for offset in range(SHINGLE):
        grams = (grams << np.uint64(8)) | data[offset : offset + grams.size]
    return np.unique(grams)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique shingle arrays."""
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def minhash(grams: np.ndarray) -> np.ndarray:
    """MinHash signature (NUM_PERM values) of a shingle array."""
    mixed = (grams * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    values = (mixed[:, None] * _A[None, :] + _B[None, :]) % _PRIME
    return values.min(axis=0)


@dataclass(frozen=True)
class Removal:
    """One record dropped from the dataset and the kept record it matched."""

    id: str
    reason: str
    matched_id: str


def _reason(kind: str, removed: Record, kept: Record) -> str:
    leak = kept.split == "test" and removed.split != "test"
    return f"test_leak_{kind}" if leak else f"duplicate_{kind}"


def deduplicate(records: list[Record], threshold: float) -> tuple[list[Record], list[Removal]]:
    """Kept records (sorted by id) and removals, by exact then near-duplicate matching."""
    order = sorted(records, key=lambda r: (SPLIT_RANK[r.split], ORIGIN_RANK[r.origin], r.id))
    removals: list[Removal] = []
    first_by_key: dict[str, Record] = {}
    survivors = []
    for record in order:
        key = exact_key(record)
        if key in first_by_key:
            match = first_by_key[key]
            removals.append(Removal(record.id, _reason("exact", record, match), match.id))
        else:
            first_by_key[key] = record
            survivors.append(record)
    kept = _near_dedup(survivors, threshold, removals)
    LOG.info("dedup: %d records in, %d kept, %d removed", len(records), len(kept), len(removals))
    return sorted(kept, key=lambda r: r.id), sorted(removals, key=lambda r: r.id)


def _near_dedup(order: list[Record], threshold: float, removals: list[Removal]) -> list[Record]:
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    kept: list[tuple[Record, str]] = []  # bodies, not shingles: memory stays linear in text
    for n, record in enumerate(order, start=1):
        body = body_text(record)
        grams = shingles(body)
        signature = minhash(grams)
        bands = [(b, signature[b * ROWS : (b + 1) * ROWS].tobytes()) for b in range(BANDS)]
        candidates = sorted({i for band in bands for i in buckets.get(band, ())})
        match = next(
            (kept[i][0] for i in candidates if _near(record, grams, kept[i], threshold)), None
        )
        if match is not None:
            removals.append(Removal(record.id, _reason("near", record, match), match.id))
        else:
            for band in bands:
                buckets[band].append(len(kept))
            kept.append((record, body))
        if n % 50000 == 0:
            LOG.info("near-dedup: %d of %d records compared", n, len(order))
    return [record for record, _ in kept]


def _near(record: Record, grams: np.ndarray, other: tuple[Record, str], t: float) -> bool:
    other_record, other_body = other
    if jaccard(grams, shingles(other_body)) < t:
        return False
    if not record.context and not other_record.context:
        return True
    if not record.context or not other_record.context:
        return False
    a, b = normalize_text(record.context), normalize_text(other_record.context)
    return jaccard(shingles(a), shingles(b)) >= t


def _load_group(origin: str, paths: list[Path]) -> list[Record]:
    records = []
    for path in paths:
        for record in read_records(path):
            if record.origin != origin or record.language != "fr":
                raise ValueError(
                    f"{path}: record {record.id} has origin {record.origin!r} and language "
                    f"{record.language!r}, but the {origin!r} inputs must hold French "
                    f"{origin!r} records (was the source translated?)"
                )
            records.append(record)
    LOG.info("%s: %d records from %d files", origin, len(records), len(paths))
    return records


def build_dataset(
    native: list[Path],
    translated: list[Path],
    synthetic: list[Path],
    out_dir: Path,
    near_duplicate_threshold: float,
) -> None:
    """Dedup/decontaminate all records and write per-origin splits, ALL, stats and removals."""
    groups = {"native": native, "translated": translated, "synthetic": synthetic}
    records = [r for origin, paths in groups.items() for r in _load_group(origin, list(paths))]
    duplicates = sorted(i for i, n in Counter(r.id for r in records).items() if n > 1)
    if duplicates:
        raise ValueError(f"record ids occur in several input files: {duplicates[:5]}")
    kept, removals = deduplicate(records, near_duplicate_threshold)
    out_dir = Path(out_dir)
    for origin in ORIGINS:
        for split in SPLITS:
            part = [r for r in kept if r.origin == origin and r.split == split]
            write_records(part, out_dir / origin / f"{split}.parquet")
    write_records(kept, out_dir / "all.parquet")
    _write_csv(out_dir / "stats.csv", ["origin", "source", "task", "split", "n"], _counts(kept))
    rows = [[r.id, r.reason, r.matched_id] for r in removals]
    _write_csv(out_dir / "removed.csv", ["id", "reason", "matched_id"], rows)
    LOG.info("dataset: %d records kept, %d removed, written to %s", len(kept), len(rows), out_dir)


def _counts(records: list[Record]) -> list[list[object]]:
    counts = Counter((r.origin, r.source, r.task, r.split) for r in records)
    return [[*key, n] for key, n in sorted(counts.items())]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def extract_test_sets(test_files: list[Path], test_sets: dict[str, dict], out_dir: Path) -> None:
    """Write out_dir/{name}.parquet with the test records of each {name: {origin, source, task}}."""
    records = [r for path in test_files for r in read_records(path)]
    not_test = [r.id for r in records if r.split != "test"]
    if not_test:
        raise ValueError(f"test files hold non-test records, e.g. {not_test[:3]}: {test_files}")
    for name, spec in sorted(test_sets.items()):
        missing = {"origin", "source", "task"} - set(spec)
        if missing:
            raise ValueError(f"evaluation.test_sets.{name} lacks keys {sorted(missing)}")
        part = [
            r
            for r in records
            if (r.origin, r.source, r.task) == (spec["origin"], spec["source"], spec["task"])
        ]
        if not part:
            raise ValueError(
                f"test set {name!r} ({spec}) is empty: no test record of that origin, source "
                f"and task in {[str(p) for p in test_files]}; fix evaluation.test_sets.{name}"
            )
        write_records(sorted(part, key=lambda r: r.id), Path(out_dir) / f"{name}.parquet")
        LOG.info("test set %s: %d records", name, len(part))
