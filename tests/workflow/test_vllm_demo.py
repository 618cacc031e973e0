"""The demo's predict and judge jobs through the real vLLM engine, end to end to table1.csv.

config/demo-vllm.yaml on top of config/demo.yaml (one mixture kept, to bound the run): Snakemake
from the workflow's venv; each predict job's script reruns itself under `prediction.python` (the
vLLM venv) and vLLM spawns its engine process from there (the `__main__` guard of predict.py);
the judge and the meta-evaluation start `vllm serve` from that venv. Runs from `make test-vllm`
(MEDINJECTION_VLLM_PYTHON = .venv-vllm/bin/python); skipped without it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.support.workflow import BIN, make_workdir, snakemake

VLLM_PYTHON = os.environ.get("MEDINJECTION_VLLM_PYTHON", "")
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON or not (BIN / "snakemake").exists(),
        reason="needs MEDINJECTION_VLLM_PYTHON (the vLLM venv) and snakemake (make test-vllm)",
    ),
]


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merged(base[key], value) if both else value
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = make_workdir(tmp_path_factory.mktemp("demo_vllm"))
    config = _merged(
        yaml.safe_load((workdir / "config/demo.yaml").read_text()),
        yaml.safe_load((workdir / "config/demo-vllm.yaml").read_text()),
    )
    python = Path(VLLM_PYTHON).absolute()
    config["prediction"]["python"] = str(python)
    config["judge"]["candidates"]["tiny-base"]["serve"]["executable"] = str(python.parent / "vllm")
    config["mixtures"]["definitions"] = {"NAT": {"native": 1}}
    (workdir / "config/ci-vllm.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(workdir, "--configfile", "config/ci-vllm.yaml", "--cores", "2", timeout=3000)
    return workdir


def test_table1_through_vllm(demo: Path) -> None:
    with (demo / "results/demo-vllm/tables/table1.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == ["base", "NAT"]
    assert all(0.0 <= float(row["em"]) <= 100.0 for row in rows)


def test_predict_jobs_ran_the_vllm_engine_in_the_vllm_venv(demo: Path) -> None:
    for model in ("base", "NAT/seed42"):
        log = (demo / f"results/demo-vllm/logs/predict/{model}.log").read_text()
        assert "vLLM 0.3" in log and "vLLM predicted" in log, log[-2000:]
    # NAT is a DoRA adapter: predicted from the merged weights
    assert (demo / "results/demo-vllm/train/NAT/seed42/merged/config.json").is_file()
    files = sorted((demo / "results/demo-vllm/predict/NAT/seed42").glob("*.parquet"))
    assert files and all(pq.read_table(f).num_rows for f in files)


def test_judge_jobs_went_through_vllm_serve(demo: Path) -> None:
    logs = sorted((demo / "results/demo-vllm/logs/judge").rglob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        assert "starting vllm server" in text and "vllm server stopped" in text, text[-2000:]
    judged = sorted((demo / "results/demo-vllm/judge").rglob("*.parquet"))
    assert judged and all(pq.read_table(f).column("judge").to_pylist() for f in judged)
