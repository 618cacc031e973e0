"""Run a rule's Snakemake script in another Python environment (e.g. the vLLM venv).

Snakemake runs a `script:` with its own interpreter unless a conda environment or a container is
deployed (`--sdm conda`). Where neither is available (CI, a laptop, the CPU demo), a rule whose
code needs packages that cannot share the workflow's venv (vllm pins its own torch and
transformers) names an interpreter in the config; the script then runs its own file again (the
temporary copy Snakemake wrote, preamble included) under that interpreter and waits for it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def needs_rerun(python: str | None) -> bool:
    """Whether `python` (a configured interpreter; None = this one) is not the running one."""
    if not python:
        return False
    return os.path.abspath(python) != os.path.abspath(sys.executable)


def rerun_script(python: str, script_file: str, config_key: str) -> None:
    """Run `script_file` (the job's script with Snakemake's preamble) under `python`; raise on
    failure, naming the interpreter and the config key that chose it."""
    executable = os.path.abspath(python)
    if not Path(executable).is_file():
        raise FileNotFoundError(
            f"{config_key}: interpreter {python} does not exist (resolved to {executable}); "
            "build it (`make vllm-env` for .venv-vllm/bin/python) or set the key to null"
        )
    log.info("running %s under %s (%s)", script_file, executable, config_key)
    done = subprocess.run([executable, script_file], check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{script_file} failed under {executable} ({config_key}) with exit code "
            f"{done.returncode}; see the rule's log"
        )
