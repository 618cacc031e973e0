"""Predictions of one model on the test sets: greedy, constrained, letter probabilities.

Both backends return `Prediction`s; this module turns them into the one prediction-file schema
(raw outputs, strictly parsed answers, first-step letter probabilities), for the original option
order (permutation 0) and for the option-shuffled reruns of the position-bias analysis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.evaluation.parsing import parse_letters
from medinjection.evaluation.permutation import permuted_records
from medinjection.interpreter import needs_rerun, rerun_script
from medinjection.manifests import check_folder, check_inputs, write_manifest
from medinjection.modeling.backends import BACKENDS
from medinjection.modeling.decoding import check_protocol
from medinjection.modeling.types import Prediction, PromptItem
from medinjection.prompts import messages_hash, prompt_messages
from medinjection.records import Record, join_letters, read_records
from medinjection.settings import PositionBiasSettings, PredictionSettings

log = logging.getLogger(__name__)

PREDICTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("permutation", pa.int32()),
        ("option_order", pa.string()),
        ("prompt_hash", pa.string()),
        ("letters", pa.string()),
        ("gold", pa.string()),
        ("greedy_output", pa.string()),
        ("greedy_parsed", pa.string()),
        ("constrained_output", pa.string()),
        ("constrained_parsed", pa.string()),
        ("letter_probs", pa.string()),
    ]
)


def max_new_tokens(record: Record, max_new_tokens_oeq: int) -> int:
    """Generation budget as in the official script: 1 (mcqu), 2 x options (mcq), OEQ budget."""
    if record.task == "mcqu":
        return 1
    if record.task == "mcq":
        return max(1, 2 * len(record.option_letters()))
    return max_new_tokens_oeq


def prompt_item(
    record: Record,
    prompt_version: str,
    max_new_tokens_oeq: int,
    permutation: int = 0,
    option_order: str | None = None,
) -> PromptItem:
    """One record's prompt messages (no assistant turn), budget and option order."""
    return PromptItem(
        record=record,
        messages=prompt_messages(record, prompt_version),
        letters=record.option_letters(),
        max_new_tokens=max_new_tokens(record, max_new_tokens_oeq),
        permutation=permutation,
        option_order=",".join(record.option_letters()) if option_order is None else option_order,
    )


def prompt_items(
    records: Sequence[Record], prompt_version: str, max_new_tokens_oeq: int
) -> list[PromptItem]:
    """Prompt items of test records in their original option order."""
    return [prompt_item(record, prompt_version, max_new_tokens_oeq) for record in records]


def permuted_items(
    records: Sequence[Record],
    prompt_version: str,
    max_new_tokens_oeq: int,
    permutations: int,
    seed: int,
) -> list[PromptItem]:
    """Prompt items of every option-shuffled rerun (permutation-major) of MCQ/MCQU records."""
    return [
        prompt_item(record, prompt_version, max_new_tokens_oeq, k, order)
        for k, order, record in permuted_records(records, permutations, seed)
    ]


def parsed_answer(output: str | None, item: PromptItem) -> str | None:
    """The strict parser's letters ("A,C", sorted) of one output; None if invalid or open."""
    if item.record.task == "oeq":
        return None
    letters = parse_letters(output, item.letters, single=item.record.task == "mcqu")
    return None if letters is None else join_letters(letters)


def prediction_rows(items: Sequence[PromptItem], preds: Sequence[Prediction]) -> list[dict]:
    """Rows of the prediction file (docs/architecture.md contract)."""
    if len(items) != len(preds):
        raise RuntimeError(f"backend returned {len(preds)} predictions for {len(items)} items")
    return [
        {
            "id": item.record.id,
            "task": item.record.task,
            "permutation": item.permutation,
            "option_order": item.option_order,
            "prompt_hash": messages_hash(item.messages),
            "letters": ",".join(item.letters),
            "gold": item.record.answer,
            "greedy_output": pred.greedy,
            "greedy_parsed": parsed_answer(pred.greedy, item),
            "constrained_output": pred.constrained,
            "constrained_parsed": parsed_answer(pred.constrained, item),
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


def model_context_length(model_dir: Path) -> int:
    """The base model's context length: max_position_embeddings of its config.json."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for block in (config, config.get("text_config") or {}):
        if isinstance(block.get("max_position_embeddings"), int):
            return int(block["max_position_embeddings"])
    raise ValueError(
        f"{path} has no max_position_embeddings: the prompts cannot be checked against the "
        "model's context; set prediction.max_model_len"
    )


def check_context(
    items: Sequence[PromptItem],
    prompt_lengths: Sequence[int],
    max_model_len: int,
    source: str,
    limit_name: str = "prediction.max_model_len",
) -> None:
    """Refuse, before any generation, a prompt whose tokens plus its generation budget exceed
    the context limit (vLLM would reject it; transformers would run past the positions the
    model was trained on and answer silently wrong)."""
    over = [
        (item, n)
        for item, n in zip(items, prompt_lengths, strict=True)
        if n + item.max_new_tokens > max_model_len
    ]
    if not over:
        return
    item, n = max(over, key=lambda pair: pair[1] + pair[0].max_new_tokens)
    shown = f" (option order {item.permutation})" if item.permutation else ""
    raise ValueError(
        f"{source}: item {item.record.id!r}{shown} needs {n} prompt tokens + "
        f"{item.max_new_tokens} new tokens = {n + item.max_new_tokens} > {limit_name} "
        f"{max_model_len} ({len(over)} item(s) of this file over the limit, this is the longest); "
        "raise prediction.max_model_len (at most the model's context length) or shorten the item"
    )


def _path_list(value: Sequence[str | Path] | str | Path) -> list[Path]:
    # a snakemake named input holding one file is a plain string, not a list
    return [Path(value)] if isinstance(value, str | Path) else [Path(p) for p in value]


def _permuted_jobs(
    testset_files: list[Path], permuted_files: list[Path]
) -> list[tuple[Path, Path]]:
    by_name = {path.stem: path for path in testset_files}
    missing = [path for path in permuted_files if path.stem not in by_name]
    if missing:
        raise ValueError(
            f"permuted outputs {[str(p) for p in missing]} have no test set of the same name "
            f"among {sorted(by_name)}"
        )
    return [(by_name[path.stem], path) for path in permuted_files]


def _predict_file(
    predictor: Any, items: list[PromptItem], ids: list[list[int]], out: Path, label: str
) -> None:
    log.info("%s: %d items", label, len(items))
    preds = predictor.predict(items, prompt_ids=ids) if items else []
    write_predictions(prediction_rows(items, preds), out)
    log.info("%s: wrote %d predictions", out, len(preds))


def predict(
    prediction: PredictionSettings,
    model_dir: Path,
    adapter_dir: Path | None,
    testset_files: list[Path],
    out_files: list[Path],
    prompt_version: str,
    protocol: str = "official",
    permuted_files: list[Path] | None = None,
    position_bias: PositionBiasSettings | None = None,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
    model_manifests: list[Path] | None = None,
) -> None:
    """Predict every test set with one model (+ optional adapter) and write one file per set.

    With `input_manifests` (the test sets' manifest; the rule gives it) the test sets are checked
    against it before the model is loaded; `out_manifest` records the prediction files. With
    `model_manifests` (prepare_base_model's, and train's or merge_adapter's) every file of the
    model folder and of the adapter is checked (bytes, sha256: once per job) before loading.
    `prediction` gives the backend, batch size, OEQ budget and `max_model_len`.

    `protocol` (evaluation.protocol) picks the constrained decoding: "official" (the authors'
    Evaluate.py) or "letters" (modeling/decoding.py describes both).

    `permuted_files` (named like their test sets) get the option-shuffled reruns of those sets.
    Every prompt of every file is checked before the first generation against `max_model_len`
    (vLLM also sizes its engine with it; transformers has no such limit of its own, so the check
    is what enforces it there: both backends refuse the same items), or, when it is None, against
    the model's own context (max_position_embeddings).
    """
    backend, max_model_len = prediction.backend, prediction.max_model_len
    max_new_tokens_oeq = prediction.max_new_tokens_oeq
    testset_files, out_files = _path_list(testset_files), _path_list(out_files)
    permuted = _permuted_jobs(testset_files, _path_list(permuted_files or []))
    if backend not in BACKENDS:
        raise ValueError(f"unknown prediction.backend {backend!r}; valid: {sorted(BACKENDS)}")
    if len(testset_files) != len(out_files):
        raise ValueError(
            f"{len(testset_files)} test set files but {len(out_files)} output files; "
            "output.predictions must follow input.testsets one to one"
        )
    if permuted and (position_bias is None or position_bias.permutations < 1):
        raise ValueError("permuted outputs need evaluation.position_bias.permutations >= 1")
    check_protocol(protocol)
    if input_manifests is not None:
        check_inputs(testset_files, input_manifests, "predict")
    if model_manifests is not None:
        for folder in (model_dir, adapter_dir):
            if folder is not None:
                check_folder(Path(folder), model_manifests, "predict")
    predictor = BACKENDS[backend](
        Path(model_dir),
        Path(adapter_dir) if adapter_dir else None,
        prediction.batch_size,
        max_model_len,
        protocol,
    )
    jobs = [
        (prompt_items(read_records(testset), prompt_version, max_new_tokens_oeq), out,
         testset, f"{testset} ({backend})")
        for testset, out in zip(testset_files, out_files, strict=True)
    ]  # fmt: skip
    for testset, out in permuted:
        assert position_bias is not None
        items = permuted_items(
            read_records(testset),
            prompt_version,
            max_new_tokens_oeq,
            position_bias.permutations,
            position_bias.seed,
        )
        label = f"{testset} x{position_bias.permutations} orders"
        jobs.append((items, out, testset, label))
    limit, limit_name = max_model_len, "prediction.max_model_len"
    if limit is None:  # no configured limit: the model's own context still holds
        limit = model_context_length(Path(model_dir))
        limit_name = "the model's context (max_position_embeddings; prediction.max_model_len null)"
    # each prompt is tokenized once: the ids checked here are the ids the backend decodes from
    prompt_ids: list[list[list[int]]] = []
    for items, _, testset, _ in jobs:
        ids = predictor.prompt_ids(items) if items else []
        check_context(items, [len(row) for row in ids], limit, str(testset), limit_name)
        prompt_ids.append(ids)
    for index, (items, out, _, label) in enumerate(jobs):
        _predict_file(predictor, items, prompt_ids[index], out, label)
        prompt_ids[index] = []  # this file's ids are no longer needed
    if out_manifest is not None:
        write_manifest(out_manifest, "predict", [out for _, out, _, _ in jobs])


def rerun_under(python: str | None, script: str) -> bool:
    """Run the job's `script` again under `prediction.python` (the vLLM venv) when that is not
    this interpreter; True when it did (the caller then stops), False when this one is it."""
    if python is None or not needs_rerun(python):
        return False
    rerun_script(python, script, "prediction.python")
    return True
