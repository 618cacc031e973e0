"""Structure-preserving EN->FR translation of QA records, one JSON-schema request per record.

Only text travels: question, context, option texts keyed by their letter, and open answers. Option
letters and multiple-choice gold letters are never sent and never changed; every reply is checked
against the source structure, retried once with feedback, then quarantined with its reasons.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.llm.client import ChatRequest, ChatResult, LLMClient, open_client
from medinjection.llm.cost import usage_cost
from medinjection.llm.structured import (
    SHARD_CHANCE,
    Report,
    check_loss_rate,
    clean_text,
    json_schema_format,
    parse_reply,
    strict_object,
    with_feedback,
    worth_retrying,
)
from medinjection.manifests import check_inputs, write_manifest
from medinjection.records import (
    ARROW_SCHEMA,
    Record,
    from_row,
    read_records,
    table_rows,
    validation_errors,
    write_records,
)

log = logging.getLogger(__name__)

# Free-text meta fields translated with the record when present (PubMedQA's long answer).
TRANSLATABLE_META: tuple[str, ...] = ("long_answer",)

TRANSLATION_SYSTEM = (
    "You are a professional medical translator. Translate every string value of the JSON object "
    "you receive from English into French as used by French physicians. Keep exactly the same "
    "keys, including every option letter; never add, drop, merge or reorder options; do not "
    "answer the question or comment on it. Keep numbers, units, laboratory values, doses and "
    "abbreviations exact; write drug names with their French international nonproprietary name. "
    "Reply with the JSON object only."
)


def shard_of(record_id: str, shards: int) -> int:
    """Stable shard index of a record id (sha256-based, unlike Python's salted hash)."""
    # the first 8 bytes of the digest, big-endian: int(hexdigest()[:16], 16) without the text
    return int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big") % shards


def translation_payload(record: Record) -> dict[str, Any]:
    """The English text of a record as JSON: question, context, options by letter, open answer."""
    payload: dict[str, Any] = {"question": record.question}
    if record.context:
        payload["context"] = record.context
    if record.options:
        payload["options"] = {letter: text for letter, text in record.options}
    if record.task == "oeq":
        payload["answer"] = record.answer
    for name in TRANSLATABLE_META:
        value = record.meta.get(name)
        if isinstance(value, str) and value.strip():
            payload[name] = value
    return payload


def payload_schema(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON schema mirroring a payload: the same keys, the same option letters, strings only."""
    properties: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            properties[key] = strict_object({letter: {"type": "string"} for letter in value})
        else:
            properties[key] = {"type": "string"}
    return strict_object(properties)


def payload_sha256(payload: dict[str, Any]) -> str:
    """Hash of the English text that was translated (provenance in meta.en_sha256)."""
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def translation_request(
    record: Record, model: str, temperature: float, max_tokens: int
) -> ChatRequest:
    """The chat request translating one record (also used by the demo recorder)."""
    return payload_request(translation_payload(record), model, temperature, max_tokens)


def payload_request(
    payload: dict[str, Any], model: str, temperature: float, max_tokens: int
) -> ChatRequest:
    """The translation request of any {key: English text} payload (records, test segments)."""
    messages = (
        {"role": "system", "content": TRANSLATION_SYSTEM},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
    )
    params = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "response_format": json_schema_format("translation", payload_schema(payload)),
    }
    return ChatRequest(model, messages, params)


def _reply_errors(payload: dict[str, Any], reply: dict[str, Any]) -> list[str]:
    errors = []
    missing, extra = sorted(set(payload) - set(reply)), sorted(set(reply) - set(payload))
    if missing or extra:
        errors.append(f"keys differ from the source: missing {missing}, unexpected {extra}")
    for key in set(payload) & set(reply):
        if isinstance(payload[key], dict):
            got = reply[key]
            if not isinstance(got, dict) or sorted(got) != sorted(payload[key]):
                letters = sorted(got) if isinstance(got, dict) else got
                errors.append(f"option letters {letters} differ from {sorted(payload[key])}")
            elif any(clean_text(text) is None for text in got.values()):
                errors.append("empty option text")
        elif clean_text(reply[key]) is None:
            errors.append(f"empty or non-string {key}")
    return errors


def _reply_text(value: Any) -> str:
    """A text of a reply that _reply_errors found non-empty."""
    text = clean_text(value)
    if text is None:
        raise ValueError(f"reply text {value!r} is empty: _reply_errors should have said so")
    return text


def apply_translation(
    record: Record, reply: dict[str, Any], model: str
) -> tuple[Record | None, list[str]]:
    """The French record built from a reply, or None and why the reply breaks the structure."""
    payload = translation_payload(record)
    errors = _reply_errors(payload, reply)
    if errors:
        return None, errors
    options = None
    if record.options is not None:
        options = tuple(
            (letter, _reply_text(reply["options"][letter])) for letter, _ in record.options
        )
    meta = dict(record.meta)
    meta.update({name: clean_text(reply[name]) for name in TRANSLATABLE_META if name in payload})
    meta.update(translation_model=model, en_id=record.id, en_sha256=payload_sha256(payload))
    translated = replace(
        record,
        origin="translated",
        language="fr",
        question=_reply_text(reply["question"]),
        context=clean_text(reply["context"]) if "context" in payload else record.context,
        options=options,
        answer=_reply_text(reply["answer"]) if record.task == "oeq" else record.answer,
        meta=meta,
    )
    errors = validation_errors(translated)
    return (None, errors) if errors else (translated, [])


def _judge(record: Record, result: ChatResult, model: str) -> tuple[Record | None, list[str]]:
    reply, errors = parse_reply(result)
    if reply is None:
        return None, errors
    return apply_translation(record, reply, model)


class _Check:
    """Why a reply cannot translate `record` (the client caches only replies with no reason).

    Remembers its last verdict, so the stage reuses the client's judgement of the same reply
    (`outcome`) instead of judging every reply twice.
    """

    def __init__(self, record: Record, model: str) -> None:
        self.record = record
        self.model = model
        self._last: tuple[ChatResult, tuple[Record | None, list[str]]] | None = None

    def __call__(self, result: ChatResult) -> list[str]:
        outcome = _judge(self.record, result, self.model)
        self._last = (result, outcome)
        return outcome[1]

    def outcome(self, result: ChatResult) -> tuple[Record | None, list[str]]:
        """`_judge(record, result, model)`, from the last call when it judged this very result."""
        if self._last is not None and self._last[0] is result:
            return self._last[1]
        return _judge(self.record, result, self.model)


def translate_records(
    records: Sequence[Record],
    client: LLMClient,
    model: str,
    temperature: float,
    max_tokens: int,
    report: Report,
) -> list[Record]:
    """Translate records (one retry with feedback for unusable replies, then quarantine)."""
    requests = [translation_request(r, model, temperature, max_tokens) for r in records]
    checks = [_Check(record, model) for record in records]
    first = client.complete_many(requests, checks)
    outcomes = [check.outcome(res) for check, res in zip(checks, first, strict=True)]
    retry_index = [
        i for i, (out, _) in enumerate(outcomes) if out is None and worth_retrying(first[i])
    ]
    for i, (out, errors) in enumerate(outcomes):
        if out is None and not worth_retrying(first[i]):
            report.quarantine(records[i].id, errors, source=records[i].source)
    if retry_index:
        log.info("translate: %d replies unusable, retrying once with feedback", len(retry_index))
        retries = [with_feedback(requests[i], first[i].text, outcomes[i][1]) for i in retry_index]
        second = client.complete_many(retries, [checks[i] for i in retry_index])
        for i, res in zip(retry_index, second, strict=True):
            out, errors = checks[i].outcome(res)
            if out is None:
                reasons = [f"attempt 1: {e}" for e in outcomes[i][1]]
                reasons += [f"attempt 2: {e}" for e in errors]
                report.quarantine(records[i].id, reasons, source=records[i].source)
            outcomes[i] = (out, errors)
    report.counts["retried"] = len(retry_index)
    return [out for out, _ in outcomes if out is not None]


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
    endpoint: dict,
    model: str,
    temperature: float,
    max_tokens: int,
    mode: str,
    replay_file: str | None,
    cache_path: str,
    submit: str = "direct",
    batch: dict | None = None,
    price: dict | None = None,
    *,
    max_quarantine_rate: float,
    quarantine_path: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Translate one shard of a normalized English source; write records and a usage report.

    The quarantined records are also written to `quarantine_path` (beside the job's log, outside
    its outputs, so they survive a failed job). More than `max_quarantine_rate` of them stops it
    when the excess is beyond chance for the shard's size (structured.SHARD_CHANCE); the source's
    exact rate is checked by `gather_shards`.
    With `input_manifests` (normalize's; the rule gives it) the records are checked first.
    """
    if input_manifests is not None:
        check_inputs([records_path], input_manifests, "translate_shard")
    selected, total = read_shard(records_path, shard, shards)
    log.info("translate: shard %d/%d holds %d of %d records", shard, shards, len(selected), total)
    report = Report(stage="translate", model=model, extra={"shard": shard, "shards": shards})
    with open_client(endpoint, mode, replay_file, cache_path, submit, batch) as client:
        translated = translate_records(selected, client, model, temperature, max_tokens, report)
        report.usage = client.usage.as_dict()
    report.extra["cost"] = usage_cost(report.usage, price, submit)
    report.counts.update(records_in=len(selected), translated=len(translated))
    write_records(translated, out_path)
    report.write(usage_path)
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
) -> None:
    """Concatenate translated shards into one file (recorded in `out_manifest`); a duplicate id
    is an error.

    With the shards' usage reports and `max_quarantine_rate`, the source's loss rate (all its
    shards) is checked first: a shard stops alone only on a loss beyond chance for its size.
    """
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
