"""Rules of workflow/rules/dataset.smk: merge native, translated and synthetic records (dedup and
test decontamination in medinjection.dataset) into splits per origin with their stats, and cut the
configured test sets out of the test splits."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medinjection.dataset import dedupe_ordered, keep_order
from medinjection.dedup import THREADS
from medinjection.manifests import check_inputs, write_manifest
from medinjection.published import comparison_rows
from medinjection.records import ARROW_SCHEMA, ORIGINS, SPLITS, read_records, write_records
from medinjection.settings import DatasetSettings, TestSetSettings

LOG = logging.getLogger(__name__)


def load_group(origin: str, paths: list[Path]) -> pa.Table:
    """Records of one origin's input files as one table; other origins or languages are errors."""
    tables = []
    for path in paths:
        table = pq.read_table(path, schema=ARROW_SCHEMA)
        wrong = table.filter(
            pc.or_(pc.not_equal(table["origin"], origin), pc.not_equal(table["language"], "fr"))
        )
        if wrong.num_rows:
            row = wrong.slice(0, 1).to_pylist()[0]
            raise ValueError(
                f"{path}: record {row['id']} has origin {row['origin']!r} and language "
                f"{row['language']!r}, but the {origin!r} inputs must hold French "
                f"{origin!r} records (was the source translated?)"
            )
        tables.append(table)
    LOG.info("%s: %d records from %d files", origin, sum(t.num_rows for t in tables), len(paths))
    return pa.concat_tables(tables) if tables else ARROW_SCHEMA.empty_table()


def build_dataset(
    native: list[Path],
    translated: list[Path],
    synthetic: list[Path],
    out_dir: Path,
    dataset: DatasetSettings,
    source_stats: list[Path] | None = None,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Dedup/decontaminate all records; write per-origin splits, ALL, stats and removals.

    `dataset.deduplicate` false keeps every record: the released-data study trains
    on the authors' data exactly (removed.csv then holds its header only). With
    `input_manifests` (the producers' manifests; the rule gives them) the inputs are checked
    against them first; `out_manifest` records the splits written.
    """
    groups = {"native": native, "translated": translated, "synthetic": synthetic}
    if input_manifests is not None:
        inputs = [*native, *translated, *synthetic, *(source_stats or [])]
        check_inputs(inputs, input_manifests, "build_dataset")
    table = pa.concat_tables([load_group(o, list(paths)) for o, paths in groups.items()])
    duplicates = _duplicate_ids(table)
    if duplicates:
        raise ValueError(f"record ids occur in several input files: {duplicates[:5]}")
    ordered = keep_order(table)
    del table  # one copy of the records in memory at a time (full study: ~0.6 GB each)
    if dataset.deduplicate:
        kept, removals = dedupe_ordered(ordered, dataset.near_duplicate_threshold)
    else:
        kept, removals = ordered.take(pc.sort_indices(ordered["id"])), []
        LOG.info("dedup: off (dataset.deduplicate false), %d records kept", kept.num_rows)
    del ordered
    out_dir = Path(out_dir)
    _write_splits(kept, out_dir)
    counts = _counts(kept)
    _write_csv(out_dir / "stats.csv", ["origin", "source", "task", "split", "n"], counts)
    rows = [[r.id, r.reason, r.matched_id] for r in removals]
    _write_csv(out_dir / "removed.csv", ["id", "reason", "matched_id"], rows)
    comparison = comparison_rows(counts)
    header = ["origin", "split", "ours", "published", "difference", "why"]
    _write_csv(out_dir / "published_comparison.csv", header, comparison)
    for row in comparison:
        LOG.info("ours vs published: %s", " | ".join(str(v) for v in row[:5]))
    _write_csv(
        out_dir / "sources.csv", ["source", "kept", "quarantined"], _source_rows(source_stats)
    )
    LOG.info(
        "dataset: %d records kept, %d removed, written to %s", kept.num_rows, len(rows), out_dir
    )
    if out_manifest is not None:
        parts = [out_dir / origin / f"{split}.parquet" for origin in ORIGINS for split in SPLITS]
        write_manifest(out_manifest, "build_dataset", [*parts, out_dir / "all.parquet"])


def _duplicate_ids(table: pa.Table) -> list[str]:
    counts = pc.value_counts(table["id"])
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    return sorted(repeated.field("values").to_pylist())


def _write_splits(kept: pa.Table, out_dir: Path) -> None:
    """out_dir/{origin}/{split}.parquet and out_dir/all.parquet, written on all cores."""
    parts = [(origin, split) for origin in ORIGINS for split in SPLITS]
    # ALL first: it is as big as the others together, so the two cores finish together; each
    # part is filtered by its writer, so no more than THREADS of them are in memory at once
    with ThreadPoolExecutor(THREADS) as pool:  # the parquet writer releases the GIL
        done = [pool.submit(_write_table, kept, out_dir / "all.parquet")]
        done += [pool.submit(_write_part, kept, part, out_dir) for part in parts]
        for future in done:
            future.result()


def _write_part(kept: pa.Table, part: tuple[str, str], out_dir: Path) -> None:
    origin, split = part
    mask = pc.and_(pc.equal(kept["origin"], origin), pc.equal(kept["split"], split))
    _write_table(kept.filter(mask), out_dir / origin / f"{split}.parquet")


def _write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA), path)


def _counts(table: pa.Table) -> list[list[object]]:
    keys = ["origin", "source", "task", "split"]
    counts = Counter(zip(*(table[k].to_pylist() for k in keys), strict=True))
    return [[*key, n] for key, n in sorted(counts.items())]


def _source_rows(paths: list[Path] | None) -> list[list[object]]:
    rows = []
    for path in paths or []:
        stats = json.loads(Path(path).read_text(encoding="utf-8"))
        rows.append([stats["source"], stats["kept"], stats["quarantined"]])
    return sorted(rows)


def _write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def extract_test_sets(
    test_files: list[Path],
    test_sets: Mapping[str, TestSetSettings],
    out_dir: Path,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Write out_dir/{name}.parquet with the test records of each test set (evaluation.test_sets;
    the inputs first checked against `input_manifests`; `out_manifest` records the sets)."""
    if input_manifests is not None:
        check_inputs(test_files, input_manifests, "test_sets")
    records = [r for path in test_files for r in read_records(path)]
    not_test = [r.id for r in records if r.split != "test"]
    if not_test:
        raise ValueError(f"test files hold non-test records, e.g. {not_test[:3]}: {test_files}")
    for name, spec in sorted(test_sets.items()):
        part = [
            r
            for r in records
            if (r.origin, r.source, r.task) == (spec.origin, spec.source, spec.task)
        ]
        if not part:
            raise ValueError(
                f"test set {name!r} ({spec.to_dict()}) is empty: no test record of that origin, "
                f"source and task in {[str(p) for p in test_files]}; "
                f"fix evaluation.test_sets.{name}"
            )
        write_records(sorted(part, key=lambda r: r.id), Path(out_dir) / f"{name}.parquet")
        LOG.info("test set %s: %d records", name, len(part))
    if out_manifest is not None:
        names = sorted(test_sets)
        write_manifest(out_manifest, "test_sets", [Path(out_dir) / f"{n}.parquet" for n in names])
