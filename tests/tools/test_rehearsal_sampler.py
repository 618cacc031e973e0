"""tools/rehearsal.py: which rule a snakemake job process runs (the per-stage resource sampler)."""

from __future__ import annotations

import pytest

from tests.conftest import load_script

rehearsal = load_script("rehearsal", "tools")

PYTHON = "/w/.venv/bin/python"
TRAIN_ARGS = ["--config", "results/study/train/NAT/seed42/train_config.json", "--gpus", "0"]


@pytest.mark.parametrize(
    ("cmdline", "rule"),
    [
        # script rules: snakemake's bash -c string, or the script process itself
        (["/bin/bash", "-c", f"set -euo pipefail; {PYTHON} /w/.snakemake/scripts/tmpa.predict.py"],
         "predict"),
        ([PYTHON, "/w/.snakemake/scripts/tmpq9.build_mixture.py"], "build_mixture"),
        # the train rule's shell command, before and after the launcher replaces itself
        (["/bin/bash", "-c", "set -euo pipefail;  python -m medinjection.modeling.launch --gpus 0"
          " -- --config c.json > logs/train/NAT/seed42.log 2>&1"], "train"),
        ([PYTHON, "-m", "medinjection.modeling.launch", "--gpus", "0", "--", *TRAIN_ARGS], "train"),
        ([PYTHON, "-m", "medinjection.modeling.train", *TRAIN_ARGS], "train"),
        ([PYTHON, "-m", "torch.distributed.run", "--nproc-per-node=2", "-m",
          "medinjection.modeling.train", *TRAIN_ARGS], "train"),
        # not jobs: snakemake itself, a module whose name only starts like the training one
        ([PYTHON, "/w/.venv/bin/snakemake", "-s", "Snakefile", "--cores", "2"], None),
        ([PYTHON, "-m", "medinjection.modeling.train_config"], None),
    ],
)  # fmt: skip
def test_job_rule(cmdline: list[str], rule: str | None) -> None:
    assert rehearsal.job_rule(cmdline) == rule
