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
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]
ROOT = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("REHEARSAL_TEST_SCALE", "0.004")
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
STAGES = {
    "study": {"stage_source", "normalize_source", "normalize_corpus", "translate_shard",
              "gather_translation", "synthesize", "translation_quality", *AFTER_DATA},
    "published": {"stage_published", "normalize_published", *AFTER_DATA},
}  # fmt: skip


class Run:
    """One finished rehearsal: its work directory, config, result tree and output."""

    def __init__(self, name: str, workdir: Path, output: str) -> None:
        self.name, self.workdir, self.output = name, workdir, output
        self.config = yaml.safe_load(CONFIGS[name].read_text(encoding="utf-8"))
        self.results = workdir / self.config["results_dir"]
        self.report = json.loads((workdir / "rehearsal_report.json").read_text())

    def csv(self, path: str) -> list[dict[str, str]]:
        with (self.results / path).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Both rehearsals, run side by side (REHEARSAL_TEST_WORKDIR_<NAME>: check a finished run)."""
    started: dict[str, tuple[Path, subprocess.Popen | None, Path]] = {}
    for name, config in CONFIGS.items():
        existing = os.environ.get(f"REHEARSAL_TEST_WORKDIR_{name.upper()}")
        workdir = Path(existing) if existing else tmp_path_factory.mktemp(f"rehearsal-{name}")
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
    print(f"rehearsals ({', '.join(CONFIGS)}) at scale {SCALE}: {time.time() - start:.0f} s")
    return done


@pytest.fixture(params=list(CONFIGS))
def run(request: pytest.FixtureRequest, runs: dict[str, Run]) -> Run:
    return runs[request.param]


def test_every_stage_ran(run: Run) -> None:
    assert run.report["exit_code"] == 0
    steps = re.findall(r"(\d+) of (\d+) steps \(\d+%\) done", run.output)
    if steps:  # a fresh run: every job of the graph finished
        done, total = steps[-1]
        assert done == total and int(total) > 40
    ran = {p.name for p in (run.results / "logs").iterdir() if any(p.iterdir())}
    assert STAGES[run.name] <= ran, f"stages that did not run: {STAGES[run.name] - ran}"


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
    runtime = yaml.safe_load((run.workdir / "rehearsal_runtime.yaml").read_text())
    size = runtime["mixtures"]["size"]
    assert size == max(8, round(run.config["mixtures"]["size"] * float(SCALE)))
    for mixture in MODELS[1:]:
        lines = (run.results / f"mixtures/{mixture}/train.jsonl").read_text().splitlines()
        assert len(lines) == size


def test_feasibility_plan_from_the_built_records(run: Run) -> None:
    """The plan report (medinjection.plan) after the run: every draw covered by what was built."""
    plan = run.report["plan"]
    assert (run.workdir / "rehearsal_plan.md").read_text().startswith("| draw |")
    assert plan and all(d["ok"] for d in plan), [d for d in plan if not d["ok"]]
    assert all(d["basis"].startswith("built") for d in plan), {d["basis"] for d in plan}
    size = yaml.safe_load((run.workdir / "rehearsal_runtime.yaml").read_text())["mixtures"]["size"]
    for mixture in run.config["mixtures"]["definitions"]:
        draws = [d for d in plan if d["what"] == f"mixture {mixture} train"]
        assert sum(d["required"] for d in draws) == size
    tests = {d["what"] for d in plan if d["what"].startswith("test set ")}
    assert tests == {f"test set {name}" for name in run.config["evaluation"]["test_sets"]}


def test_hub_sources_came_through_snapshot_download(runs: dict[str, Run]) -> None:
    study = runs["study"]
    sources = study.results / "resources/sources"
    manifest = json.loads((sources / "mmlu/manifest.json").read_text())
    assert manifest["resolved_revision"] == manifest["location"]["revision"]
    staged = {p.parent.name for p in (sources / "pubmedqa_artificial/raw").rglob("*.parquet")}
    assert staged == {"pqa_artificial"}  # the files pattern holds offline too
    mmlu = sources / "mmlu/raw"
    assert not (mmlu / "all").exists() and not (mmlu / "auxiliary_train").exists()


def test_released_files_staged_in_their_layout(runs: dict[str, Run]) -> None:
    """study.md §1.6: Split/task/<task>_<train|val|test>.json; Synthetic's suffix is _training."""
    staged = runs["published"].results / "resources/published"
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
        stats = json.loads(
            (runs["published"].results / f"published/{origin}/stats.json").read_text()
        )
        assert stats["quarantined"] > 0, (origin, stats)


def test_batch_trouble_was_met_and_survived(runs: dict[str, Run]) -> None:
    study = runs["study"]
    server = study.report["server"]
    assert server["storm_429"] == 5 and server["expired"] == 1
    assert server["failed_lines"] > 0 and server["invalid"] > 0
    usage = [json.loads(p.read_text()) for p in (study.results / "translate").rglob("*.usage.json")]
    assert sum(u["counts"]["retried"] for u in usage) > 0  # invalid replies retried with feedback
    assert sum(u["counts"]["quarantined"] for u in usage) > 0  # and quarantined when still invalid


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows
