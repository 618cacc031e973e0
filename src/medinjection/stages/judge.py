"""Stages of workflow/rules/judge.smk: the judge of one model's open answers (the candidate of
`judge.select`, or of the meta-evaluation's selection file), the staging of the physician
annotations, and the meta-evaluation of every candidate judge and metric against them.

Every judge, in either rule, is built one way: the script rebuilds each candidate's settings
(`judge.candidates.<name>`, a `JudgeCandidateSettings`) and the endpoint of each openai candidate
(`llm.endpoints.<name>`, an `EndpointSettings`) from the rule's params; `JudgeRun` adds the llm
mode, replay file and response cache of this job, and `JUDGE_BACKENDS` (stages/judge_backends.py)
turns it into a chat function (`evaluation.judge.Chat`): the local model, or the LLM client
(`llm.chat.ChatFn`, one client and at most one vllm server per candidate and job, closed once at
the end).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.evaluation.judge import (
    JUDGMENT_SCHEMA,
    judge_messages,
    load_judge_prompt,
    prompt_sha256,
    uses_base_model,
)
from medinjection.evaluation.judge_selection import (
    AUTO,
    judge_scorer,
    select_judge,
    write_selection,
)
from medinjection.evaluation.metaeval import (
    HUMAN_LABELS,
    METRIC_SCORERS,
    correlation_table,
    item_scores,
    regression_rows,
    verbosity_rows,
)
from medinjection.manifests import check_inputs, write_manifest
from medinjection.modeling.bertscore_model import bertscore_batch_size, bertscore_settings
from medinjection.prompts import render_user
from medinjection.records import read_records
from medinjection.settings import (
    BertScoreSettings,
    BootstrapSettings,
    EndpointSettings,
    JudgeCandidateSettings,
    LocationSettings,
    MetaevalSettings,
)
from medinjection.stages.judge_backends import DEFAULT_CACHE, JUDGE_BACKENDS, JudgeRun, run_judge

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the judges


def judge_run(
    candidate: JudgeCandidateSettings,
    endpoints: Mapping[str, EndpointSettings],
    mode: str,
    replay_file: str | None,
    cache_path: str,
) -> JudgeRun:
    """The JudgeRun of a candidate: an openai candidate gets its endpoint from `endpoints`."""
    endpoint = None
    if candidate.backend == "openai":
        if candidate.endpoint not in endpoints:
            raise KeyError(
                f"judge backend openai needs endpoint {candidate.endpoint!r} (llm.endpoints), "
                f"but this job was given {sorted(endpoints)}"
            )
        endpoint = endpoints[candidate.endpoint]
    return JudgeRun(candidate, endpoint, mode, replay_file, cache_path)


def _base_model_dir(run: JudgeRun, model_dir: Path | None) -> Path | None:
    return model_dir if uses_base_model(run.candidate.backend, run.candidate.model) else None


def _cache_path(cache_paths: Mapping[str, str] | None, name: str) -> str:
    return (cache_paths or {}).get(name, DEFAULT_CACHE)


# ---------------------------------------------------------------- rule judge


def _error(raw: str) -> str | None:
    """The API's refusal message of a reply (medinjection.llm.chat.Refused), else None."""
    return getattr(raw, "error", None)


def _file_messages(
    prediction_file: Path, testset_file: Path, prompt_version: str, system_prompt: str
):
    predictions = pq.read_table(prediction_file, columns=["id", "greedy_output"]).to_pylist()
    records = {record.id: record for record in read_records(testset_file)}
    ids, messages = [], []
    for row in predictions:
        record = records.get(row["id"])
        if record is None:
            raise KeyError(
                f"{prediction_file}: prediction id {row['id']!r} is not in {testset_file}"
            )
        question = render_user(record, prompt_version)
        candidate = row["greedy_output"] or ""
        messages.append(judge_messages(question, candidate, record.answer, system_prompt))
        ids.append(row["id"])
    return ids, messages


def judge_predictions(
    run: JudgeRun,
    model_dir: Path | None,
    prediction_files: list[Path],
    testset_files: list[Path],
    out_files: list[Path],
    prompt_version: str,
    prompt_file: Path | None = None,
) -> None:
    """Judge one model's open-answer predictions; one parquet (id, score, raw, judge) per set.

    `prompt_file` (judge.prompt_file) holds the system prompt; None = the shipped paraphrase.
    """
    if not len(prediction_files) == len(testset_files) == len(out_files):
        raise ValueError(
            f"judge: {len(prediction_files)} prediction files, {len(testset_files)} "
            f"test sets and {len(out_files)} outputs must correspond one to one"
        )
    if run.candidate.backend not in JUDGE_BACKENDS:
        raise KeyError(
            f"judge backend {run.candidate.backend!r} unknown; valid: {sorted(JUDGE_BACKENDS)}"
        )
    system_prompt = load_judge_prompt(prompt_file)
    log.info("judge prompt: %s (sha256 %s)", prompt_file, prompt_sha256(system_prompt)[:16])
    per_file = [
        _file_messages(Path(p), Path(t), prompt_version, system_prompt)
        for p, t in zip(prediction_files, testset_files, strict=True)
    ]
    # one backend call for all files, so a vllm server or a model is loaded once per job
    results = run_judge([m for _, msgs in per_file for m in msgs], run, model_dir)
    offset = 0
    for (ids, _), out in zip(per_file, out_files, strict=True):
        chunk = results[offset : offset + len(ids)]
        offset += len(ids)
        rows = [
            {"id": i, "score": s, "raw": r, "judge": run.candidate.model, "error": _error(r)}
            for i, (s, r) in zip(ids, chunk, strict=True)
        ]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA), out)
        log.info("wrote %s (%d judgments)", out, len(rows))


def resolve_judge(
    candidates: Mapping[str, JudgeCandidateSettings], select: str, selection_file: Path | None
) -> tuple[str, JudgeCandidateSettings]:
    """(name, settings) of the judge to run: the configured one, or the one in the file."""
    if select == AUTO:
        if selection_file is None:
            raise FileNotFoundError(
                "judge.select is auto but no results/metaeval/judge_selection.json was given; "
                "the metaeval rule writes it"
            )
        name = json.loads(Path(selection_file).read_text(encoding="utf-8"))["selected"]
    else:
        name = select
    if name not in candidates:
        raise KeyError(
            f"judge {name!r} (from {selection_file or 'judge.select'}) is not among the "
            f"candidates given to this job {sorted(candidates)}"
        )
    return name, candidates[name]


def judge_with_selection(
    candidates: Mapping[str, JudgeCandidateSettings],
    select: str,
    selection_file: Path | None,
    model_dir: Path | None,
    prediction_files: list[Path],
    testset_files: list[Path],
    out_files: list[Path],
    cache_path: str,
    prompt_version: str,
    prompt_file: Path | None = None,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
    endpoints: Mapping[str, EndpointSettings] | None = None,
    mode: str = "live",
    replay_file: str | None = None,
) -> None:
    """Judge one model's open answers with the selected candidate judge (`prompt_file`: the
    judge's system prompt, judge.prompt_file; `endpoints`: the llm.endpoints of the openai
    candidates; `mode`, `replay_file`: llm.mode and llm.replay_file); predictions and test sets
    are first checked against `input_manifests`, and `out_manifest` records the judgment files."""
    if input_manifests is not None:
        check_inputs([*prediction_files, *testset_files], input_manifests, "judge")
    name, candidate = resolve_judge(candidates, select, selection_file)
    run = judge_run(candidate, endpoints or {}, mode, replay_file, cache_path)
    log.info("judge: candidate %r (%s, %s)", name, candidate.model, candidate.backend)
    judge_predictions(
        run,
        model_dir=_base_model_dir(run, model_dir),
        prediction_files=prediction_files,
        testset_files=testset_files,
        out_files=out_files,
        prompt_version=prompt_version,
        prompt_file=prompt_file,
    )
    if out_manifest is not None:
        write_manifest(out_manifest, "judge", out_files)


# ---------------------------------------------------------------- rule stage_annotations

REQUIRED_FIELDS = ("id", "Question", "verite_terrain", "equivalence")
KNOWN_FIELDS = frozenset({*REQUIRED_FIELDS, "preference"})
AUTO_FIELD = "auto"  # metaeval.candidate_field: the one field that is not a known one


def _read_items(raw: bytes, origin: str) -> list[dict[str, Any]]:
    text = raw.decode("utf-8").strip()
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fetch(location: LocationSettings) -> tuple[bytes, str]:
    if location.kind == "local":
        path = Path(location.path or "")
        if not location.path or not path.exists():
            raise FileNotFoundError(
                f"metaeval.annotations.path: {location.path} does not exist; "
                f"{location.obtain or 'provide the annotation file'}"
            )
        return path.read_bytes(), str(path)
    if location.kind == "url" and location.url:
        with urllib.request.urlopen(location.url, timeout=60) as response:  # noqa: S310
            return response.read(), location.url
    raise ValueError(
        f"metaeval.annotations.kind: {location.kind!r} is not supported here (use local or url)"
    )


def _candidate_field(item: dict[str, Any], configured: str, origin: str) -> str:
    """The candidate-answer column of an item: the configured name, or with ``auto`` the only
    field outside id/Question/verite_terrain/equivalence/preference."""
    if configured != AUTO_FIELD:
        return configured
    extra = sorted(set(item) - KNOWN_FIELDS)
    if len(extra) != 1:
        raise ValueError(
            f"{origin}: item {item.get('id')!r}: metaeval.candidate_field is auto but the item has "
            f"{len(extra)} candidate column(s) {extra} besides {sorted(KNOWN_FIELDS)}; name the "
            "column in metaeval.candidate_field"
        )
    return extra[0]


def stage_annotations(metaeval: MetaevalSettings, out_path: Path) -> None:
    """Read the authors' annotation file (`metaeval.annotations`), check it, rename the candidate
    column (`metaeval.candidate_field`) to `candidate`."""
    candidate_field = metaeval.candidate_field
    raw, origin = _fetch(metaeval.annotations)
    expected = metaeval.annotations.sha256
    digest = hashlib.sha256(raw).hexdigest()
    if expected and digest != expected:
        raise ValueError(f"{origin}: sha256 {digest} differs from metaeval.annotations.sha256")
    items = _read_items(raw, origin)
    rows = []
    for item in items:
        field = _candidate_field(item, candidate_field, origin)
        missing = [f for f in (*REQUIRED_FIELDS, field) if f not in item]
        if missing:
            raise ValueError(
                f"{origin}: item {item.get('id')!r} lacks field(s) {missing}; "
                f"check metaeval.candidate_field (fields present: {sorted(item)})"
            )
        if item["equivalence"] not in ("Oui", "Non"):
            raise ValueError(f"{origin}: item {item['id']!r} equivalence must be Oui/Non")
        row = {k: v for k, v in item.items() if k != field}
        row["candidate"] = item[field]
        row["generator"] = field  # the authors name the column after the generating model
        rows.append(row)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    log.info("staged %d annotated pairs from %s (sha256 %s)", len(rows), origin, digest)


# ---------------------------------------------------------------- rule metaeval


def load_annotations(path: Path, candidate_field: str) -> list[dict[str, Any]]:
    """Annotation items (JSONL or JSON list), checked for the fields the meta-evaluation needs."""
    text = Path(path).read_text(encoding="utf-8").strip()
    items = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    needed = ("id", "Question", "verite_terrain", candidate_field, "equivalence")
    for item in items:
        missing = [name for name in needed if name not in item]
        if missing:
            raise KeyError(
                f"{path}: item {item.get('id')!r} lacks {missing} "
                f"(check metaeval.candidate_field; fields: {sorted(item)})"
            )
        if item["equivalence"] not in HUMAN_LABELS:
            raise ValueError(
                f"{path}: item {item['id']!r} equivalence "
                f"{item['equivalence']!r} is not one of {sorted(HUMAN_LABELS)}"
            )
    return items


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def run_metaeval(
    annotations: Path,
    candidate_field: str,
    judges: Mapping[str, JudgeCandidateSettings],
    select: str,
    select_by: str,
    model_dir: Path | None,
    bertscore: BertScoreSettings,
    bootstrap: BootstrapSettings,
    outputs: dict[str, Path],
    prompt_file: Path | None = None,
    endpoints: Mapping[str, EndpointSettings] | None = None,
    mode: str = "live",
    replay_file: str | None = None,
    cache_paths: Mapping[str, str] | None = None,
) -> None:
    """Score every candidate judge and metric against physician labels, pick the judge, and write
    ``outputs`` correlations, verbosity, regression, scores (CSV) and selection (JSON).
    `prompt_file` (judge.prompt_file): the judges' system prompt; None = the shipped paraphrase.
    `endpoints`, `mode`, `replay_file` as for `judge_with_selection`; `cache_paths`: each
    candidate's response cache."""
    items = load_annotations(Path(annotations), candidate_field)
    log.info("meta-evaluation on %d annotated items (%s)", len(items), annotations)
    runs = {
        name: judge_run(
            candidate, endpoints or {}, mode, replay_file, _cache_path(cache_paths, name)
        )
        for name, candidate in judges.items()
    }
    bert = bertscore_settings(bertscore)
    system_prompt = load_judge_prompt(prompt_file)
    judge_fns = {
        name: functools.partial(run_judge, run=run, model_dir=_base_model_dir(run, model_dir))
        for name, run in runs.items()
    }
    frame = item_scores(
        items, candidate_field, judge_fns, bert, system_prompt, bertscore_batch_size(bertscore)
    )
    boot = bootstrap.to_dict()
    scorers = [judge_scorer(name) for name in judges] + list(METRIC_SCORERS)
    correlations = correlation_table(frame, scorers, boot)
    selection = select_judge(correlations, list(judges), select, select_by)
    frame["judge"] = frame[judge_scorer(selection["selected"])]
    _write_table(correlations, Path(outputs["correlations"]))
    _write_table(pd.DataFrame(verbosity_rows(frame, scorers, boot)), Path(outputs["verbosity"]))
    _write_table(pd.DataFrame(regression_rows(frame, scorers, boot)), Path(outputs["regression"]))
    _write_table(frame, Path(outputs["scores"]))
    write_selection(selection, Path(outputs["selection"]))
    log.info(
        "correlations with physicians:\n%s",
        correlations[["scorer", "pearson", "spearman", "kendall", "n", "note"]],
    )
