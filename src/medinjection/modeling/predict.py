"""Predictions of one model on the test sets: greedy, constrained, letter probabilities."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.prompts import messages_hash, prompt_messages
from medinjection.records import Record, read_records

log = logging.getLogger(__name__)

PREDICTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("prompt_hash", pa.string()),
        ("letters", pa.string()),
        ("gold", pa.string()),
        ("greedy_output", pa.string()),
        ("constrained_output", pa.string()),
        ("letter_probs", pa.string()),
    ]
)


@dataclass(frozen=True)
class PromptItem:
    """One test record ready for decoding: chat messages and its generation budget."""

    record: Record
    messages: list[dict[str, str]]
    letters: tuple[str, ...]
    max_new_tokens: int


@dataclass(frozen=True)
class Prediction:
    """Backend output for one item (constrained/probs are None for open questions)."""

    greedy: str
    constrained: str | None
    letter_probs: dict[str, float] | None


def max_new_tokens(record: Record, max_new_tokens_oeq: int) -> int:
    """Generation budget as in the official script: 1 (mcqu), 2 x options (mcq), OEQ budget."""
    if record.task == "mcqu":
        return 1
    if record.task == "mcq":
        return max(1, 2 * len(record.option_letters()))
    return max_new_tokens_oeq


def prompt_items(
    records: Sequence[Record], prompt_version: str, max_new_tokens_oeq: int
) -> list[PromptItem]:
    """Prompt messages (no assistant turn) and budgets for test records."""
    return [
        PromptItem(
            record=record,
            messages=prompt_messages(record, prompt_version),
            letters=record.option_letters(),
            max_new_tokens=max_new_tokens(record, max_new_tokens_oeq),
        )
        for record in records
    ]


def prediction_rows(items: Sequence[PromptItem], preds: Sequence[Prediction]) -> list[dict]:
    """Rows of the prediction file (docs/architecture.md contract)."""
    if len(items) != len(preds):
        raise RuntimeError(f"backend returned {len(preds)} predictions for {len(items)} items")
    return [
        {
            "id": item.record.id,
            "task": item.record.task,
            "prompt_hash": messages_hash(item.messages),
            "letters": ",".join(item.letters),
            "gold": item.record.answer,
            "greedy_output": pred.greedy,
            "constrained_output": pred.constrained,
            "letter_probs": (
                json.dumps(pred.letter_probs, sort_keys=True)
                if pred.letter_probs is not None
                else None
            ),
        }
        for item, pred in zip(items, preds, strict=True)
    ]


def write_predictions(rows: Sequence[dict], path: Path) -> None:
    """Write prediction rows with the fixed schema (an empty list gives an empty file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows), schema=PREDICTION_SCHEMA), path)


def _transformers_backend(model_dir: Path, adapter_dir: Path | None, batch_size: int) -> Any:
    from medinjection.modeling.transformers_backend import TransformersPredictor

    return TransformersPredictor(model_dir, adapter_dir, batch_size)


def _vllm_backend(model_dir: Path, adapter_dir: Path | None, batch_size: int) -> Any:
    from medinjection.modeling.vllm_backend import VllmPredictor

    return VllmPredictor(model_dir, adapter_dir)


BACKENDS: dict[str, Callable[[Path, Path | None, int], Any]] = {
    "transformers": _transformers_backend,
    "vllm": _vllm_backend,
}


def _path_list(value: Sequence[str | Path] | str | Path) -> list[Path]:
    # a snakemake named input holding one file is a plain string, not a list
    return [Path(value)] if isinstance(value, str | Path) else [Path(p) for p in value]


def predict(
    backend: str,
    model_dir: Path,
    adapter_dir: Path | None,
    testset_files: list[Path],
    out_files: list[Path],
    batch_size: int,
    max_new_tokens_oeq: int,
    prompt_version: str,
) -> None:
    """Predict every test set with one model (+ optional adapter) and write one file per set."""
    testset_files, out_files = _path_list(testset_files), _path_list(out_files)
    if backend not in BACKENDS:
        raise ValueError(f"unknown prediction.backend {backend!r}; valid: {sorted(BACKENDS)}")
    if len(testset_files) != len(out_files):
        raise ValueError(
            f"{len(testset_files)} test set files but {len(out_files)} output files; "
            "output.predictions must follow input.testsets one to one"
        )
    predictor = BACKENDS[backend](
        Path(model_dir), Path(adapter_dir) if adapter_dir else None, batch_size
    )
    for testset, out in zip(testset_files, out_files, strict=True):
        items = prompt_items(read_records(testset), prompt_version, max_new_tokens_oeq)
        log.info("%s: %d items with backend %s", testset, len(items), backend)
        preds = predictor.predict(items) if items else []
        write_predictions(prediction_rows(items, preds), out)
        log.info("%s: wrote %d predictions", out, len(preds))
