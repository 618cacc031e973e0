"""The study config rehearsed end to end (tools/rehearsal.py) at a small fraction of its data.

Same code as `make rehearsal` (full scale), one key changed: --scale. The study's own sources,
pins, adapters, split rules, dedup, mixtures, test sets and metrics run against a generated local
Hugging Face cache (real file trees) and a local OpenAI server (Batch API with a 429 storm, an
expired batch, failed lines and ~2% invalid replies); only network and GPU are stood in for.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Not in `make test` yet (-m "not rehearsal"): at the CI scale (0.4%) some of the study's test
# sets draw from empty splits (frenchmedmcqa-mcq: 0 test records) and the run stops; the scale
# needs per-pool minimums first. `make test-rehearsal` runs it.
pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]
ROOT = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("REHEARSAL_TEST_SCALE", "0.004")
# the study config's own result tree, under the rehearsal's work directory
RESULTS = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["results_dir"]
MODELS = ["base", "NAT", "TRAD", "SYN", "NAT-TRAD", "NAT-SYN", "TRAD-SYN", "ALL"]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    existing = os.environ.get("REHEARSAL_TEST_WORKDIR")  # check a finished run's outputs only
    if existing:
        return Path(existing)
    workdir = tmp_path_factory.mktemp("rehearsal")
    command = [sys.executable, str(ROOT / "tools" / "rehearsal.py"), "--config",
               str(ROOT / "config" / "config.yaml"), "--workdir", str(workdir), "--scale", SCALE,
               "--cores", "2"]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return workdir


def test_table1_of_the_study_config(rehearsal: Path) -> None:
    with (rehearsal / RESULTS / "tables/table1.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == MODELS


def test_hub_sources_came_through_snapshot_download(rehearsal: Path) -> None:
    manifest = json.loads(
        (rehearsal / RESULTS / "resources/sources/pubmedqa/manifest.json").read_text()
    )
    assert manifest["resolved_revision"] == manifest["location"]["revision"]
    staged = {
        p.parent.name
        for p in (rehearsal / RESULTS / "resources/sources/pubmedqa/raw").rglob("*.parquet")
    }
    assert staged == {"pqa_labeled"}  # the files pattern holds offline too
    mmlu = rehearsal / RESULTS / "resources/sources/mmlu/raw"
    assert not (mmlu / "all").exists() and not (mmlu / "auxiliary_train").exists()


def test_batch_trouble_was_met_and_survived(rehearsal: Path) -> None:
    report = json.loads((rehearsal / "rehearsal_report.json").read_text())
    server = report["server"]
    assert server["storm_429"] == 5 and server["expired"] == 1
    assert server["failed_lines"] > 0 and server["invalid"] > 0
    usage = [
        json.loads(p.read_text()) for p in (rehearsal / RESULTS / "translate").rglob("*.usage.json")
    ]
    assert sum(u["counts"]["retried"] for u in usage) > 0  # invalid replies retried with feedback
    assert sum(u["counts"]["quarantined"] for u in usage) > 0  # and quarantined when still invalid
    assert report["exit_code"] == 0


def test_dataset_stats_and_mixture_sizes(rehearsal: Path) -> None:
    with (rehearsal / RESULTS / "dataset/stats.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["origin"] for row in rows} >= {"native", "translated", "synthetic"}
    runtime = (rehearsal / "rehearsal_runtime.yaml").read_text()
    size = int(runtime.split("size:")[1].split()[0])
    for mixture in MODELS[1:]:
        lines = (rehearsal / RESULTS / f"mixtures/{mixture}/train.jsonl").read_text().splitlines()
        assert len(lines) == size
