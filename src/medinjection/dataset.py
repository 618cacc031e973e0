"""Exact and near dedup of native/translated/synthetic records, with test decontamination (the
merge and the split files are the build_dataset stage, medinjection.stages.dataset).

Columnar (Arrow) from end to end: the full study (~571K records) takes about 22 s of CPU and
3.1 GB peak (bench/data_pipeline.py); the full-scale rehearsal's templated data (565K records,
60M near-duplicate candidate pairs) about 50 s of CPU and 3.9 GB. The matching method is
documented in medinjection.dedup.
Keep order: test before validation before train, then native, translated, synthetic, then id,
so decontamination always removes the training side (reasons test_leak_exact / test_leak_near
in removed.csv).
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medinjection.dedup import (
    DedupColumns,
    Removal,
    bodies_from_columns,
    find_removals,
    normalize_text,
)
from medinjection.records import (
    ARROW_SCHEMA,
    ORIGINS,
    Record,
    from_row,
    to_row,
)

LOG = logging.getLogger(__name__)
KEEP_SPLIT_ORDER: tuple[str, ...] = ("test", "validation", "train")
__all__ = [
    "Removal",
    "dedupe_ordered",
    "dedupe_table",
    "deduplicate",
    "keep_order",
    "normalize_text",
]


def keep_order(table: pa.Table) -> pa.Table:
    """Rows sorted test > validation > train, then native > translated > synthetic, then id."""
    split_rank = pc.index_in(table["split"], value_set=pa.array(KEEP_SPLIT_ORDER))
    origin_rank = pc.index_in(table["origin"], value_set=pa.array(ORIGINS))
    ranked = table.append_column("_split", split_rank).append_column("_origin", origin_rank)
    ranked = ranked.sort_by(
        [("_split", "ascending"), ("_origin", "ascending"), ("id", "ascending")]
    )
    return ranked.drop_columns(["_split", "_origin"])


def dedupe_table(table: pa.Table, threshold: float) -> tuple[pa.Table, list[Removal]]:
    """Kept rows (sorted by id) and removals (sorted by id) of a records table."""
    return dedupe_ordered(keep_order(table), threshold)


def dedupe_ordered(ordered: pa.Table, threshold: float) -> tuple[pa.Table, list[Removal]]:
    """dedupe_table of a table already in keep order (the caller can drop its unsorted copy)."""
    ids = ordered["id"].to_pylist()
    splits = ordered["split"].to_pylist()
    cols = DedupColumns(
        ids=ids,
        splits=splits,
        tasks=ordered["task"].to_pylist(),
        contexts=ordered["context"].to_pylist(),
        bodies=bodies_from_columns(ordered["question"], ordered["options"]),
    )
    found = find_removals(cols, threshold)
    keep: np.ndarray = np.ones(len(ids), dtype=bool)
    keep[[i for i, _, _ in found]] = False
    rows = pa.array(np.flatnonzero(keep))
    by_id = pc.sort_indices(ordered["id"].take(rows))
    kept = ordered.take(rows.take(by_id))  # one copy of the kept rows, already sorted by id
    removals = sorted((Removal(ids[i], reason, ids[m]) for i, m, reason in found), key=_by_id)
    LOG.info("dedup: %d records in, %d kept, %d removed", len(ids), kept.num_rows, len(removals))
    return kept, removals


def _by_id(removal: Removal) -> str:
    return removal.id


def deduplicate(records: list[Record], threshold: float) -> tuple[list[Record], list[Removal]]:
    """Kept records (sorted by id) and removals, by exact then near-duplicate matching."""
    table = pa.Table.from_pylist([to_row(r) for r in records], schema=ARROW_SCHEMA)
    kept, removals = dedupe_table(table, threshold)
    return [from_row(row) for row in kept.to_pylist()], removals
