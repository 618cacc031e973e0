"""Rules of workflow/rules/sources.smk: stage a source's raw files (hashed, with a manifest), then
normalize them to validated records (+ quarantine and stats) or, for corpora, to documents."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from medinjection.manifests import write_manifest
from medinjection.records import Record, validation_errors, write_records
from medinjection.settings import DatasetSettings, LocationSettings
from medinjection.sources import get_adapter, get_corpus_adapter
from medinjection.sources.base import ROW, Quarantined, hash_split, write_documents
from medinjection.sources.fetch import check_staged, extract_archives, fetch, file_hashes
from medinjection.sources.pins import is_offline

LOG = logging.getLogger(__name__)
Role = Literal["native", "translate", "published"]
ROLE_LANGUAGE: dict[str, str] = {"native": "fr", "translate": "en", "published": "fr"}


def offline_now(data_offline: bool) -> bool:
    """data.offline, or HF_HUB_OFFLINE in this job's environment (not a param: where the files
    come from is not what they are, so it reruns nothing)."""
    return is_offline({"data": {"offline": data_offline}}, os.environ)


def stage_source(
    source: str,
    location: LocationSettings,
    raw_dir: Path,
    manifest_path: Path,
    offline: bool = False,
) -> None:
    """Copy (local) or fetch (hf via the Hub cache; github at a commit) a source's raw files
    (`location`: sources.<name>.location, or data.published.<origin>); write its manifest."""
    raw_dir = Path(raw_dir)
    manifest: dict[str, Any] = {"source": source, "location": location.to_dict()}
    resolved = fetch(source, location, raw_dir, offline)
    if resolved is not None:
        manifest["resolved_revision"] = resolved
    if location.extract:
        manifest["extracted"] = extract_archives(raw_dir)
    files = file_hashes(raw_dir)
    if not files:
        raise FileNotFoundError(f"source {source!r}: nothing was staged into {raw_dir}")
    manifest["files"] = files
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    Path(manifest_path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    LOG.info("%s: staged %d files into %s", source, len(files), raw_dir)


def normalize_source(
    source: str,
    adapter: str,
    role: Role,
    raw_dir: Path,
    records_path: Path,
    quarantine_path: Path,
    stats_path: Path,
    dataset: DatasetSettings,
    kept_quarantine_path: Path | None = None,
    manifest_path: Path | None = None,
    out_manifest: Path | None = None,
    rule: str = "normalize_source",
) -> None:
    """Run a QA adapter, assign splits, validate, quarantine failures, write records and stats.

    `dataset` gives the hash split of records without a split of their own (split_seed,
    validation_fraction, test_fraction) and the quarantine limit; its dedup keys are
    build_dataset's. When the quarantined share exceeds `dataset.max_quarantine_rate` the
    quarantine is copied to `kept_quarantine_path` (outside the job's outputs, which a failed
    job loses) and the error names that copy. With `manifest_path` (the rule always gives it)
    the staged files are first checked against the hashes it records; `out_manifest` records
    the records and stats written (for build_dataset's check), naming `rule` as their producer.
    """
    if manifest_path is not None:
        check_staged(source, Path(raw_dir), Path(manifest_path))
    if role not in ROLE_LANGUAGE:
        raise ValueError(
            f"source {source!r}: role {role!r} cannot be normalized into records; valid: "
            f"{sorted(ROLE_LANGUAGE)} (corpora with role synthesize use normalize_corpus)"
        )
    with _no_cyclic_gc():
        kept, quarantined = _collect(
            get_adapter(adapter)(Path(raw_dir), source),
            source,
            role,
            (dataset.split_seed, dataset.validation_fraction, dataset.test_fraction),
            f"{raw_dir} (row not located)",
        )
        write_records(kept, records_path)
    _write_quarantine(source, quarantined, quarantine_path)
    stats = _stats(source, kept, quarantined)
    Path(stats_path).write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", "utf-8")
    LOG.info("%s: kept %d, quarantined %d", source, len(kept), len(quarantined))
    _check_rate(
        source,
        len(kept),
        quarantined,
        dataset.max_quarantine_rate,
        quarantine_path,
        kept_quarantine_path,
    )
    if out_manifest is not None:
        write_manifest(out_manifest, rule, [Path(records_path), Path(stats_path)])


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything)."""
    # Records hold no reference cycles, but hundreds of thousands of live tuples and dicts make
    # every full collection walk them all: a third of normalize's CPU time at study scale.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _collect(
    items: Iterable[Record | Quarantined],
    source: str,
    role: Role,
    split_args: tuple[int, float, float],
    unlocated: str,
) -> tuple[list[Record], list[Quarantined]]:
    """Kept records (sorted by id) and quarantined items of one adapter run, each quarantined
    item with the file and line (or parquet row) the adapter read it from (`ROW`)."""
    kept: list[Record] = []
    quarantined: list[Quarantined] = []
    seen: set[str] = set()
    ROW.where = None
    for n, item in enumerate(items, start=1):
        where, ROW.where = ROW.where or unlocated, None
        if isinstance(item, Quarantined):
            quarantined.append(Quarantined(item.raw_id, item.reasons, item.raw, where))
        else:
            record = _assign_split(item, *split_args)
            reasons = _reasons(record, role, seen)
            if reasons:
                raw_id = record.id.removeprefix(f"{source}:")
                quarantined.append(Quarantined(raw_id, tuple(reasons), _raw_view(record), where))
            else:
                kept.append(record)
            seen.add(record.id)
        if n % 10000 == 0:
            LOG.info("%s: %d raw items read (%d kept)", source, n, len(kept))
    kept.sort(key=lambda r: r.id)
    return kept, quarantined


def _assign_split(record: Record, seed: int, validation: float, test: float) -> Record:
    rule = record.meta.get("split_rule", "source")
    if rule == "source":
        return record
    key = record.meta.get("split_key", record.id)  # views of one item share their split
    return _with_split(record, hash_split(key, seed, validation, test, rule))


def _with_split(record: Record, split: str) -> Record:
    # A shallow copy of a record no one else holds yet, so freezing is not broken: about 1 µs a
    # record where dataclasses.replace (fields() walk + frozen __init__) costs about 9 µs.
    copy = object.__new__(Record)
    copy.__dict__.update(vars(record))
    object.__setattr__(copy, "split", split)
    return copy


def _reasons(record: Record, role: str, seen: set[str]) -> list[str]:
    reasons = validation_errors(record)
    if record.id in seen:
        reasons.append(f"duplicate id {record.id!r} (the first occurrence is kept)")
    if record.language != ROLE_LANGUAGE[role]:
        reasons.append(
            f"language {record.language!r} but role {role!r} expects {ROLE_LANGUAGE[role]!r}"
        )
    return reasons


def _raw_view(record: Record) -> dict[str, Any]:
    return {
        "question": record.question,
        "options": [list(o) for o in record.options] if record.options is not None else None,
        "answer": record.answer,
        "task": record.task,
        "split": record.split,
    }


def _write_quarantine(source: str, items: Iterable[Quarantined], path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in items:
            row: dict[str, Any] = {
                "source": source,
                "raw_id": item.raw_id,
                "reasons": list(item.reasons),
            }
            row["where"] = item.where
            row["raw"] = item.raw
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) + "\n")


def _stats(source: str, kept: list[Record], quarantined: list[Quarantined]) -> dict[str, Any]:
    by_task_split = Counter(f"{r.task}/{r.split}" for r in kept)
    return {
        "source": source,
        "kept": len(kept),
        "quarantined": len(quarantined),
        "by_task_split": dict(sorted(by_task_split.items())),
    }


def _check_rate(
    source: str,
    kept: int,
    quarantined: list[Quarantined],
    max_rate: float,
    path: Path,
    kept_path: Path | None,
) -> None:
    total = kept + len(quarantined)
    if total == 0:
        raise ValueError(f"source {source!r}: the adapter yielded no raw item at all")
    rate = len(quarantined) / total
    if rate > max_rate:
        if kept_path is not None:
            Path(kept_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, kept_path)
            path = Path(kept_path)
        examples = "; ".join(
            f"{q.raw_id} ({q.where}): {', '.join(q.reasons)}" for q in quarantined[:3]
        )
        raise ValueError(
            f"source {source!r}: {len(quarantined)} of {total} raw items quarantined "
            f"({rate:.1%} > dataset.max_quarantine_rate {max_rate:.1%}); see {path}. "
            f"First reasons: {examples}"
        )


def normalize_corpus(
    source: str,
    adapter: str,
    raw_dir: Path,
    documents_path: Path,
    manifest_path: Path | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Run a corpus adapter and write its documents (sorted by id; duplicate ids are an error),
    recorded in `out_manifest` for synthesize."""
    if manifest_path is not None:
        check_staged(source, Path(raw_dir), Path(manifest_path))
    documents = sorted(get_corpus_adapter(adapter)(Path(raw_dir), source), key=lambda d: d.id)
    duplicates = sorted(i for i, n in Counter(d.id for d in documents).items() if n > 1)
    if duplicates:
        raise ValueError(f"source {source!r}: duplicate document ids {duplicates[:5]} in {raw_dir}")
    if not documents:
        raise ValueError(f"source {source!r}: no document with text under {raw_dir}")
    write_documents(documents, documents_path)
    if out_manifest is not None:
        write_manifest(out_manifest, "normalize_corpus", [Path(documents_path)])
    LOG.info("%s: wrote %d documents to %s", source, len(documents), documents_path)
