"""Both study configs rehearsed end to end (tools/rehearsal.py) at a small fraction of their data.

Same code as `make rehearsal` (full scale), one key changed: --scale. The study's own sources,
pins, adapters, split rules, dedup, mixtures, test sets and metrics run against a generated local
Hugging Face cache (real file trees) and a local OpenAI server (Batch API with a 429 storm, an
expired batch, failed lines and ~2% invalid replies); only network and GPU are stood in for.
config/config.yaml rebuilds the data from the sources; config/published.yaml trains on the
authors' released files (MedInjection-FR Native / Translated / Synthetic, generated in their
layout) and evaluates on their Test splits.

Below full scale every source split keeps a floor of items per task (POOL_MINIMUM in
tools/rehearsal_sources.py), so every test set has items to draw. The two runs share the
fixture's two processes (started together) and take one xdist worker (--dist loadfile).

The same checks read a finished tree of any scale, the full-scale `make rehearsal` included,
without running or writing anything: name its work directory (the --workdir of
tools/rehearsal.py) in REHEARSAL_TEST_WORKDIR_STUDY and/or REHEARSAL_TEST_WORKDIR_PUBLISHED.
Only the trees named are checked (the other config's tests skip), at the scale each was built at
(its rehearsal_data.json), against its own overlay (rehearsal_runtime.yaml):

    REHEARSAL_TEST_WORKDIR_STUDY=build/rehearsal \
        .venv/bin/pytest -p no:cacheprovider -m rehearsal tests/workflow/test_rehearsal.py

The report checks (exit code, plan, server counters, sampled stages) read the tree's
rehearsal_report.json, which tools/rehearsal.py writes when its run ends: they describe the
tree's last tools/rehearsal.py call, so a tree resumed with `-- --until ...` or after its LLM
stages finished shows only what that call ran.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import load_script

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]
ROOT = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("REHEARSAL_TEST_SCALE", "0.004")
rehearsal = load_script("rehearsal", "tools")
CONFIGS = {
    "study": ROOT / "config" / "config.yaml",
    "published": ROOT / "config" / "published.yaml",
}
MODELS = ["base", "NAT", "TRAD", "SYN", "NAT-TRAD", "NAT-SYN", "TRAD-SYN", "ALL"]
# the stages (rules) each config's graph must have run, by their log folders
AFTER_DATA = {"build_dataset", "test_sets", "build_mixture", "prepare_base_model",
              "render_train_config", "token_lengths", "train", "predict", "score", "judge",
              "stage_annotations", "metaeval", "significance", "table1", "plot_table1",
              "plot_per_dataset", "plot_judge_length", "position_bias",
              "position_bias_table"}  # fmt: skip
# Floors for the stand-in model's answers (config/rehearsal.yaml base_model.tiny), per model: the
# share of valid constrained answers over its MCQ/MCQU test sets pooled, the share of those test
# sets with at least one valid answer, and per open-question set the share of non-empty answers.
# At transformers' default initializer_range (0.02) all three were 0 for every model (every
# constrained answer a bare separator, every open answer newlines), so Table 1 read EM 0
# everywhere. Measured at 0.3 and CI scale (0.004), the same for every model: valid 68/107 (study;
# 0/5 medqa-mcqu and 0/3 pubmedqa-mcqu, hence no per-set floor) and 64/72 (published); 9 of 11 and
# 2 of 2 MCQ sets with a valid answer; open answers non-empty 20/20 and 40/40.
VALID_MCQ_FLOOR = 0.4
MCQ_SETS_ANSWERED_FLOOR = 0.5
ANSWERED_OEQ_FLOOR = 0.9
STAGES = {
    "study": {"stage_source", "normalize_source", "normalize_corpus", "translate_shard",
              "gather_translation", "synthesize", "translation_quality", *AFTER_DATA},
    "published": {"stage_published", "normalize_published", *AFTER_DATA},
}  # fmt: skip


class Run:
    """One finished rehearsal: its work directory, config (the study's, and as run: with the
    rehearsal overlays), scale, result tree and output."""

    def __init__(self, name: str, workdir: Path, output: str) -> None:
        self.name, self.workdir, self.output = name, workdir, output
        self.config = yaml.safe_load(CONFIGS[name].read_text(encoding="utf-8"))
        runtime = yaml.safe_load((workdir / "rehearsal_runtime.yaml").read_text())
        overlay = yaml.safe_load(rehearsal.OVERLAY.read_text(encoding="utf-8"))
        self.as_run = rehearsal.merged(self.config, overlay, runtime)
        self.scale = float(json.loads((workdir / "rehearsal_data.json").read_text())["scale"])
        self.results = workdir / self.config["results_dir"]

    @cached_property
    def report(self) -> dict[str, Any]:
        path = self.workdir / "rehearsal_report.json"
        if not path.is_file():
            pytest.fail(f"{path} is missing: tools/rehearsal.py writes it when its run ends")
        return json.loads(path.read_text())

    def csv(self, path: str) -> list[dict[str, str]]:
        with (self.results / path).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


def given_workdirs() -> dict[str, Path]:
    """The finished trees named in REHEARSAL_TEST_WORKDIR_<NAME> (none: run both afresh)."""
    names = {name: os.environ.get(f"REHEARSAL_TEST_WORKDIR_{name.upper()}") for name in CONFIGS}
    return {name: Path(path) for name, path in names.items() if path}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Both rehearsals, run side by side; or only the finished trees given (given_workdirs)."""
    given = given_workdirs()
    started: dict[str, tuple[Path, subprocess.Popen | None, Path]] = {}
    for name, config in CONFIGS.items():
        if given and name not in given:
            continue
        existing = given.get(name)
        workdir = existing or tmp_path_factory.mktemp(f"rehearsal-{name}")
        log = workdir.parent / f"{workdir.name}.log"
        process = None
        if not existing:
            command = [sys.executable, str(ROOT / "tools" / "rehearsal.py"), "--config",
                       str(config), "--workdir", str(workdir), "--scale", SCALE,
                       "--cores", "2"]  # fmt: skip
            with log.open("w") as out:
                process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        started[name] = (workdir, process, log)
    done = {}
    start = time.time()
    for name, (workdir, process, log) in started.items():
        if process is not None:
            code = process.wait()
            output = log.read_text(errors="replace")
            assert code == 0, f"rehearsal of {CONFIGS[name].name} failed:\n{output[-8000:]}"
        else:
            output = log.read_text(errors="replace") if log.exists() else ""
        done[name] = Run(name, workdir, output)
    print(f"rehearsals ({', '.join(done)}): {time.time() - start:.0f} s")
    return done


def only(runs: dict[str, Run], name: str) -> Run:
    """The run of one config; the test skips when only other trees were given."""
    if name not in runs:
        pytest.skip(f"REHEARSAL_TEST_WORKDIR_{name.upper()} not set: only the given trees")
    return runs[name]


@pytest.fixture(params=list(CONFIGS))
def run(request: pytest.FixtureRequest, runs: dict[str, Run]) -> Run:
    return only(runs, request.param)


def test_every_stage_ran(run: Run) -> None:
    assert run.report["exit_code"] == 0
    steps = re.findall(r"(\d+) of (\d+) steps \(\d+%\) done", run.output)
    if steps:  # a fresh run: every job of the graph finished
        done, total = steps[-1]
        assert done == total and int(total) > 40
    ran = {p.name for p in (run.results / "logs").iterdir() if any(p.iterdir())}
    assert STAGES[run.name] <= ran, f"stages that did not run: {STAGES[run.name] - ran}"
    # the resource sampler saw the script rules and the shell rule (train) alike
    sampled = set(run.report["stages"])
    assert {"train", "predict", "build_mixture"} <= sampled, sorted(sampled)


def test_table1_has_every_model_and_test_set(run: Run) -> None:
    rows = run.csv("tables/table1.csv")
    assert [row["model"] for row in rows] == MODELS
    for row in rows:  # EM over the MCQ test sets, the judge over the open ones: all measured
        assert 0.0 <= float(row["em"]) <= 100.0, row
        assert 0.0 <= float(row["judge"]) <= 1.0, row
        assert not math.isnan(float(row["em"])) and not math.isnan(float(row["judge"]))
    per_dataset = run.csv("tables/per_dataset.csv")
    test_sets = set(run.config["evaluation"]["test_sets"])
    # a fine-tuned model is one run, "<mixture>/seed<seed>", in the per-dataset table
    models = {
        m: {r["testset"] for r in per_dataset if r["model"].split("/")[0] == m} for m in MODELS
    }
    assert models == dict.fromkeys(MODELS, test_sets)
    for name in test_sets:
        assert _parquet_rows(run.results / f"testsets/{name}.parquet") > 0, name


def model_dirs(run: Run, stage: str) -> dict[str, Path]:
    """Each model's folder under <results>/<stage>: base, and <mixture>/seed<seed> per seed."""
    dirs = {"base": run.results / stage / "base"}
    for mixture in MODELS[1:]:
        for seed in run.as_run["training"]["seeds"]:
            dirs[f"{mixture}/seed{seed}"] = run.results / stage / f"{mixture}/seed{seed}"
    return dirs


def answer_shares(run: Run) -> dict[tuple[str, str], tuple[int, int]]:
    """(model, test set) -> (answers counted, items): valid constrained answers (MCQ/MCQU),
    non-empty greedy answers (open questions)."""
    shares = {}
    for model, folder in model_dirs(run, "predict").items():
        for name, spec in run.config["evaluation"]["test_sets"].items():
            oeq = spec["task"] == "oeq"
            column = "greedy_output" if oeq else "constrained_parsed"
            values = pq.read_table(folder / f"{name}.parquet", columns=[column]).column(0)
            counted = [bool(v and v.strip()) if oeq else v is not None for v in values.to_pylist()]
            shares[model, name] = (sum(counted), len(counted))
    return shares


def test_stand_in_model_answers(run: Run) -> None:
    """Every model gives valid constrained MCQ answers and non-empty open answers (the floors
    above), and Table 1's EM is not 0 for every model."""
    tasks = {name: spec["task"] for name, spec in run.config["evaluation"]["test_sets"].items()}
    every, low = answer_shares(run), {}
    for model in model_dirs(run, "predict"):
        shares = {name: n for (m, name), n in every.items() if m == model}
        mcq = [n for name, n in shares.items() if tasks[name] != "oeq"]
        valid, items = sum(c for c, _ in mcq), sum(n for _, n in mcq)
        if valid < VALID_MCQ_FLOOR * items:
            low[f"{model}: valid MCQ answers"] = f"{valid}/{items}"
        answered = sum(c > 0 for c, _ in mcq)
        if answered < MCQ_SETS_ANSWERED_FLOOR * len(mcq):
            low[f"{model}: MCQ test sets with a valid answer"] = f"{answered}/{len(mcq)}"
        for name, (counted, n) in shares.items():
            if tasks[name] == "oeq" and counted < ANSWERED_OEQ_FLOOR * n:
                low[f"{model}: non-empty answers on {name}"] = f"{counted}/{n}"
    assert not low, f"stand-in answers under the floors: {low}"
    table = run.csv("tables/table1.csv")
    assert any(float(row["em"]) > 0 for row in table), [row["em"] for row in table]


def test_judges_give_both_verdicts(run: Run) -> None:
    """Each judge candidate of the meta-evaluation (the tiny base model among them) and the
    judge of the open answers say 0 to some items and 1 to others."""
    with (run.results / "metaeval/item_scores.csv").open(encoding="utf-8") as handle:
        items = list(csv.DictReader(handle))
    for candidate in run.config["judge"]["candidates"]:
        verdicts = {row[f"judge:{candidate}"] for row in items}
        assert {"0.0", "1.0"} <= verdicts, (candidate, verdicts)
    scores = set()
    for folder in model_dirs(run, "judge").values():
        for path in folder.glob("*.parquet"):
            scores |= set(pq.read_table(path, columns=["score"]).column(0).to_pylist())
    assert {0.0, 1.0} <= scores, scores


def test_training_moved_every_adapter(run: Run) -> None:
    """The step cap leaves a step past the warmup's learning rate 0: each adapter's B matrices
    (zero at initialisation, where a DoRA/LoRA model is the base model) are no longer zero."""
    from safetensors.numpy import load_file

    for model, folder in model_dirs(run, "train").items():
        if model == "base":
            continue
        weights = load_file(folder / "adapter/adapter_model.safetensors")
        b = [name for name in weights if "lora_B" in name]
        assert b and all(abs(weights[name]).max() > 0 for name in b), model


def test_dataset_stats_per_origin(run: Run) -> None:
    rows = run.csv("dataset/stats.csv")
    per_origin: dict[str, int] = {}
    for row in rows:
        per_origin[row["origin"]] = per_origin.get(row["origin"], 0) + int(row["n"])
    assert set(per_origin) == {"native", "translated", "synthetic"}
    assert all(n > 0 for n in per_origin.values()), per_origin
    for name, spec in run.config["evaluation"]["test_sets"].items():  # a test pool per test set
        test = sum(int(r["n"]) for r in rows if (r["origin"], r["source"], r["task"], r["split"])
                   == (spec["origin"], spec["source"], spec["task"], "test"))  # fmt: skip
        assert test >= 1, f"test set {name}: no test records in stats.csv"


def test_mixtures_have_the_scaled_size(run: Run) -> None:
    size, study = run.as_run["mixtures"]["size"], run.config["mixtures"]["size"]
    assert size == (study if run.scale >= 1 else max(8, round(study * run.scale)))
    for mixture in MODELS[1:]:
        lines = (run.results / f"mixtures/{mixture}/train.jsonl").read_text().splitlines()
        assert len(lines) == size


def test_feasibility_plan_from_the_built_records(run: Run) -> None:
    """The plan report (medinjection.plan) after the run: every draw covered by what was built."""
    plan = run.report["plan"]
    assert (run.workdir / "rehearsal_plan.md").read_text().startswith("| draw |")
    assert plan and all(d["ok"] for d in plan), [d for d in plan if not d["ok"]]
    assert all(d["basis"].startswith("built") for d in plan), {d["basis"] for d in plan}
    size = run.as_run["mixtures"]["size"]
    for mixture in run.config["mixtures"]["definitions"]:
        draws = [d for d in plan if d["what"] == f"mixture {mixture} train"]
        assert sum(d["required"] for d in draws) == size
    tests = {d["what"] for d in plan if d["what"].startswith("test set ")}
    assert tests == {f"test set {name}" for name in run.config["evaluation"]["test_sets"]}


def test_hub_sources_came_through_snapshot_download(runs: dict[str, Run]) -> None:
    study = only(runs, "study")
    sources = study.results / "resources/sources"
    manifest = json.loads((sources / "mmlu/manifest.json").read_text())
    assert manifest["resolved_revision"] == manifest["location"]["revision"]
    staged = {p.parent.name for p in (sources / "pubmedqa_artificial/raw").rglob("*.parquet")}
    assert staged == {"pqa_artificial"}  # the files pattern holds offline too
    mmlu = sources / "mmlu/raw"
    assert not (mmlu / "all").exists() and not (mmlu / "auxiliary_train").exists()


def test_released_files_staged_in_their_layout(runs: dict[str, Run]) -> None:
    """study.md §1.6: Split/task/<task>_<train|val|test>.json; Synthetic's suffix is _training."""
    published = only(runs, "published")
    staged = published.results / "resources/published"
    files = {
        origin: {p.relative_to(staged / origin / "raw").as_posix()
                 for p in (staged / origin / "raw").rglob("*.json")}
        for origin in ("native", "translated", "synthetic")
    }  # fmt: skip
    assert files["native"] == {
        "Train/mcq/mcq_train.json", "Train/mcqu/mcqu_train.json", "Train/oeq/oeq_train.json",
        "Validation/mcqu/mcqu_val.json", "Validation/oeq/oeq_val.json",
        "Test/mcqu/mcqu_test.json", "Test/oeq/oeq_test.json",
    }  # fmt: skip
    assert files["synthetic"] == {"Train/mcq/mcq_training.json", "Train/oeq/oeq_training.json"}
    assert files["translated"] == {"Train/mcqu/mcqu_train.json", "Validation/mcqu/mcqu_val.json",
                                   "Test/mcqu/mcqu_test.json"}  # fmt: skip
    for origin in files:  # the malformed released items (no answer) were quarantined
        stats = json.loads((published.results / f"published/{origin}/stats.json").read_text())
        assert stats["quarantined"] > 0, (origin, stats)


def test_batch_trouble_was_met_and_survived(runs: dict[str, Run]) -> None:
    study = only(runs, "study")
    server = study.report["server"]
    assert server["storm_429"] == 5 and server["expired"] == 1
    assert server["failed_lines"] > 0 and server["invalid"] > 0
    usage = [json.loads(p.read_text()) for p in (study.results / "translate").rglob("*.usage.json")]
    assert sum(u["counts"]["retried"] for u in usage) > 0  # invalid replies retried with feedback
    assert sum(u["counts"]["quarantined"] for u in usage) > 0  # and quarantined when still invalid


def _parquet_rows(path: Path) -> int:
    return pq.read_metadata(path).num_rows
