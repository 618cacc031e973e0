"""Rules of workflow/rules/translate.smk: translate one shard of an English source into French
through the LLM client (requests and reply checks in medinjection.llm.translation), then gather a
source's shards after checking its loss rate over all of them."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.llm.client import open_client
from medinjection.llm.cost import usage_cost
from medinjection.llm.structured import SHARD_CHANCE, Report, check_loss_rate
from medinjection.llm.translation import translate_records
from medinjection.manifests import check_inputs, write_manifest
from medinjection.records import (
    ARROW_SCHEMA,
    Record,
    from_row,
    read_records,
    table_rows,
    write_records,
)
from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings

log = logging.getLogger(__name__)


def shard_of(record_id: str, shards: int) -> int:
    """Stable shard index of a record id (sha256-based, unlike Python's salted hash)."""
    # the first 8 bytes of the digest, big-endian: int(hexdigest()[:16], 16) without the text
    return int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big") % shards


def select_shard(
    records: Sequence[Record], shard: int, shards: int, sharded: bool = False
) -> list[Record]:
    """The records of shard `shard` out of `shards` (English records only); `sharded`: the
    records are already that shard's (read_shard)."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"translation shard {shard} out of range for translation.shards={shards}")
    selected = list(records) if sharded else [r for r in records if shard_of(r.id, shards) == shard]
    not_english = [r.id for r in selected if r.language != "en"]
    if not_english:
        raise ValueError(
            f"{len(not_english)} records to translate are not English (first {not_english[0]}); "
            "check sources.<source>.role in the config: only English sources take role translate"
        )
    return selected


def read_shard(records_path: Path, shard: int, shards: int) -> tuple[list[Record], int]:
    """The records of one shard of a records file, and the file's record count.

    Same records, in the same order, as `select_shard(read_records(path), ...)`, but only the
    shard's rows become `Record`s: each of a source's `shards` jobs would otherwise build every
    record of the source (187K for MedMCQA) to keep one in `shards`.
    """
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"translation shard {shard} out of range for translation.shards={shards}")
    table = pq.read_table(Path(records_path), schema=ARROW_SCHEMA)
    mask = [shard_of(record_id, shards) == shard for record_id in table["id"].to_pylist()]
    rows = table_rows(table.filter(pa.array(mask, type=pa.bool_())))
    return select_shard([from_row(row) for row in rows], shard, shards, sharded=True), len(mask)


def translate_shard(
    records_path: Path,
    out_path: Path,
    usage_path: Path,
    shard: int,
    shards: int,
    endpoint: EndpointSettings,
    model: str,
    temperature: float,
    max_tokens: int,
    mode: str,
    replay_file: str | None,
    cache_path: str,
    submit: str = "direct",
    batch: BatchSettings | None = None,
    price: PriceSettings | None = None,
    *,
    max_quarantine_rate: float,
    quarantine_path: Path,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Translate one shard of a normalized English source; write records and a usage report.

    The quarantined records are also written to `quarantine_path` (beside the job's log, outside
    its outputs, so they survive a failed job). More than `max_quarantine_rate` of them stops it
    when the excess is beyond chance for the shard's size (structured.SHARD_CHANCE); the source's
    exact rate is checked by `gather_shards`.
    With `input_manifests` (normalize's; the rule gives it) the records are checked first;
    `out_manifest` records the shard and its usage report for gather_translation.
    """
    if input_manifests is not None:
        check_inputs([records_path], input_manifests, "translate_shard")
    selected, total = read_shard(records_path, shard, shards)
    log.info("translate: shard %d/%d holds %d of %d records", shard, shards, len(selected), total)
    report = Report(stage="translate", model=model, extra={"shard": shard, "shards": shards})
    batch_keys = batch.to_dict() if batch is not None else None
    server = endpoint.to_dict()
    with open_client(server, mode, replay_file, cache_path, submit, batch_keys) as client:
        translated = translate_records(selected, client, model, temperature, max_tokens, report)
        report.usage = client.usage.as_dict()
    report.extra["cost"] = usage_cost(report.usage, price.to_dict() if price else None, submit)
    report.counts.update(records_in=len(selected), translated=len(translated))
    write_records(translated, out_path)
    report.write(usage_path)
    if out_manifest is not None:
        write_manifest(out_manifest, "translate_shard", [Path(out_path), Path(usage_path)])
    report.write_quarantine(quarantine_path)
    log.info(
        "translate: shard %d wrote %d records to %s, quarantined %d (usage %s)",
        shard,
        len(translated),
        out_path,
        len(report.quarantined),
        report.usage,
    )
    check_loss_rate(
        f"translation of {records_path} shard {shard}/{shards}",
        len(selected) - len(translated),
        len(selected),
        max_quarantine_rate,
        "translation.max_quarantine_rate",
        Path(quarantine_path),
        chance=SHARD_CHANCE,
    )


def gather_shards(
    shard_paths: list[Path],
    out_path: Path,
    usage_paths: Sequence[Path] = (),
    max_quarantine_rate: float | None = None,
    out_manifest: Path | None = None,
    input_manifests: list[Path] | None = None,
) -> None:
    """Concatenate translated shards into one file (recorded in `out_manifest`); a duplicate id
    is an error.

    With `input_manifests` (each shard's, written by translate_shard; the rule gives them) the
    shards and their usage reports are first checked against them. With the usage reports and
    `max_quarantine_rate`, the source's loss rate (all its shards) is checked next: a shard
    stops alone only on a loss beyond chance for its size.
    """
    if input_manifests is not None:
        check_inputs([*map(Path, shard_paths), *map(Path, usage_paths)], input_manifests,
                     "gather_translation")  # fmt: skip
    if max_quarantine_rate is not None:
        check_source_loss(list(map(Path, usage_paths)), max_quarantine_rate)
    seen: dict[str, Path] = {}
    merged: list[Record] = []
    for path in shard_paths:
        for record in read_records(path):
            if record.id in seen:
                raise ValueError(
                    f"record id {record.id} appears in both {seen[record.id]} and {path}; "
                    "shards must partition the source (delete the shard outputs and rerun)"
                )
            seen[record.id] = Path(path)
            merged.append(record)
    write_records(merged, out_path)
    if out_manifest is not None:
        write_manifest(out_manifest, "gather_translation", [Path(out_path)])
    log.info("gather: %d records from %d shards -> %s", len(merged), len(shard_paths), out_path)


def check_source_loss(usage_paths: list[Path], max_quarantine_rate: float) -> None:
    """Raise when the shards' usage reports lose more than the limit of the source's items."""
    if not usage_paths:
        raise ValueError("gather: translation.max_quarantine_rate given but no shard usage report")
    total = lost = 0
    for path in usage_paths:
        counts = json.loads(Path(path).read_text(encoding="utf-8"))["counts"]
        total += int(counts["records_in"])
        lost += int(counts["records_in"]) - int(counts["translated"])
    folder = Path(usage_paths[0]).parent
    check_loss_rate(
        f"translation of {folder.name} ({len(usage_paths)} shards)",
        lost,
        total,
        max_quarantine_rate,
        "translation.max_quarantine_rate",
        f"the 'quarantined' lists of {folder}/shard_*.usage.json",
    )
    log.info("gather: %d of %d items lost over the shards (limit %.1f%%)", lost, total,
             100 * max_quarantine_rate)  # fmt: skip
