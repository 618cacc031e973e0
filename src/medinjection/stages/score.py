"""Stage of workflow/rules/score.smk: the scores of one model on every test set (the metrics of
`evaluation.scoring` per file, the Table 1 aggregates, the settings that produced them) and the
item-level scores the significance tests pair on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.evaluation import metrics
from medinjection.evaluation.judge import JUDGE_PROMPT_VERSION, load_judge_prompt, prompt_sha256
from medinjection.evaluation.scoring import (
    ITEM_SCHEMA,
    PREDICTION_COLUMNS,
    aggregate,
    item_rows,
    score_mcq,
    score_oeq,
)
from medinjection.manifests import check_inputs, write_manifest
from medinjection.modeling.bertscore_model import (
    bertscore_batch_size,
    bertscore_device,
    bertscore_settings,
)
from medinjection.settings import BertScoreSettings, BootstrapSettings, TestSetSettings

log = logging.getLogger(__name__)


def _settings(
    bert: BertScoreSettings, boot: dict, has_oeq: bool, judge_prompt: Path | None
) -> dict[str, Any]:
    settings: dict[str, Any] = {"bootstrap": dict(boot), "ci_level": 0.95}
    if has_oeq:
        settings["bleu_signature"] = metrics.corpus_bleu(["a"], ["a"]).signature
        settings["chrf_signature"] = metrics.corpus_chrf(["a"], ["a"]).signature
        settings["rouge_tokenizer"] = metrics.ROUGE_TOKENIZER_NAME
        settings["bertscore"] = bertscore_settings(bert)
        settings["bertscore_rescaled"] = bert.rescale_with_baseline
        settings["judge_prompt_version"] = JUDGE_PROMPT_VERSION
        if judge_prompt is not None:  # the judge.prompt_file the judge read
            settings["judge_prompt_file"] = str(judge_prompt)
            settings["judge_prompt_sha256"] = prompt_sha256(load_judge_prompt(judge_prompt))
    return settings


def write_items(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the item-level scores parquet (ITEM_SCHEMA)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), path)


def score_model(
    model: str,
    prediction_files: list[Path],
    judge_files: list[Path],
    test_sets: Mapping[str, TestSetSettings],
    bertscore: BertScoreSettings,
    bootstrap: BootstrapSettings,
    out_path: Path,
    out_items: Path | None = None,
    judge_refused: str = "zero",
    judge_prompt: Path | None = None,
    input_manifests: list[Path] | None = None,
    gpus: int = 0,
) -> None:
    """Write results/scores/{model}.json (per-test-set metrics, Table 1 aggregates) and the
    item-level scores the significance tests pair on (``out_items``); `judge_prompt` is the
    judge.prompt_file, recorded in the settings. Predictions and judgments are first checked
    against `input_manifests` (predict's and judge's; the rule gives them). `gpus`: the job's
    (compute.score.gpus, a resource): BERTScore runs on cuda with GPUs, on the CPU without; a
    job with GPUs that sees no CUDA device fails here, before any file is read."""
    device = bertscore_device(gpus, "score")
    if input_manifests is not None:
        check_inputs([*prediction_files, *judge_files], input_manifests, "score")
    boot = bootstrap.to_dict()
    bert_args: dict[str, Any] | None = None  # resolved at the first open-question test set
    judges = {Path(f).stem: Path(f) for f in judge_files}
    pools: dict[str, list[float]] = {"mcq": [], "mcqu": [], "oeq": []}
    results: dict[str, Any] = {}
    rows_out: list[dict[str, Any]] = []
    for path in map(Path, prediction_files):
        name = path.stem
        if name not in test_sets:
            raise KeyError(
                f"{path}: test set {name!r} is not in evaluation.test_sets {sorted(test_sets)}"
            )
        task = test_sets[name].task
        rows = pq.read_table(path, columns=list(PREDICTION_COLUMNS)).to_pylist()
        wrong = {row["task"] for row in rows} - {task}
        if wrong:
            raise ValueError(f"{path}: rows of task {sorted(wrong)} in a {task} test set")
        if task == "oeq":
            if name not in judges:
                raise FileNotFoundError(
                    f"{path}: no judgment file {name}.parquet among "
                    f"{sorted(judges)}; the judge rule must run first"
                )
            if bert_args is None:
                bert_args = bertscore_settings(bertscore)
            results[name], items = score_oeq(
                rows,
                judges[name],
                bert_args,
                boot,
                judge_refused,
                bertscore_batch_size(bertscore),
                device,
            )
        else:
            results[name], items = score_mcq(rows, task, boot)
        pools[task].extend(items["judge" if task == "oeq" else "em_constrained"])
        rows_out.extend(item_rows(model, name, task, rows, items))
        log.info("%s/%s: %d items scored", model, name, len(rows))
    payload: dict[str, Any] = {
        "model": model,
        "testsets": results,
        "aggregate": aggregate(pools, boot),
        "settings": _settings(bertscore, boot, bool(pools["oeq"]), judge_prompt),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if out_items is not None:
        write_items(rows_out, Path(out_items))
    log.info(
        "wrote %s (em=%s, judge=%s)",
        out_path,
        payload["aggregate"]["em"],
        payload["aggregate"]["judge"],
    )


# ---------------------------------------------------------------- the score files' manifest


def write_score_manifest(manifest_path: Path, files: list[Path]) -> None:
    """Record the score files (scores JSON, item-level parquet) for their consumers: table1,
    significance and plot_judge_length check them against it (medinjection.manifests)."""
    write_manifest(manifest_path, "score", files)
