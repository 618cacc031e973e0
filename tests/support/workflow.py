"""Helpers to drive Snakemake on a copy of the repository (hermetic working directories)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COPIED = ("Snakefile", "workflow", "config", "envs", "profiles", "slurm")
BIN = Path(sys.executable).parent


def make_workdir(dest: Path) -> Path:
    """Copy what a run needs (not results) into dest: Snakefile, workflow, configs, fixtures."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = REPO / name
        if src.is_symlink():
            (dest / name).symlink_to(os.readlink(src))
        elif src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    shutil.copytree(REPO / "resources" / "demo", dest / "resources" / "demo")
    return dest


@cache
def _no_slurm_dir() -> Path:
    """A bin dir whose `scontrol` fails at once.

    The SLURM executor plugin runs `scontrol show config` when snakemake starts; on a machine
    where SLURM is installed but no controller runs (e.g. after tests/workflow/test_slurm.py
    stopped it, or a CI image with slurm-wlm), that call waits ~9 s. Runs that do not use SLURM
    get this shim so they measure our workflow, not the plugin's timeout.
    """
    shim = Path(tempfile.mkdtemp(prefix="no-slurm-"))
    script = shim / "scontrol"
    script.write_text("#!/bin/sh\necho 'scontrol disabled for non-SLURM test runs' >&2\nexit 1\n")
    script.chmod(0o755)
    return shim


def run_env(slurm: bool = False) -> dict[str, str]:
    """Environment with the venv's bin first on PATH (shell rules call `python`)."""
    env = dict(os.environ)
    path = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PATH"] = path if slurm else f"{_no_slurm_dir()}{os.pathsep}{path}"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    timeout: int = 1800,
    slurm: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run snakemake in workdir and return the completed process (stdout+stderr merged).

    `env` adds variables, e.g. PYTHONPATH to a copy of the package whose code a test edits.
    """
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=workdir,
        env={**run_env(slurm=slurm), **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


def demo_run(dest: Path) -> Path:
    """A copy of the repository in dest with the whole demo built (`make demo`'s jobs)."""
    workdir = make_workdir(dest)
    snakemake(workdir, "--configfile", "config/demo.yaml", "--cores", "2")
    return workdir


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    match = re.search(r"Job stats:\n(.*?)\n\s*total\s+(\d+)", output, re.S)
    if not match:
        return {}
    counts = {}
    for line in match.group(1).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def edit_once(path: Path, old: str, new: str) -> None:
    """Replace `old`, which must occur exactly once in the file, with `new`."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: {old!r} not found once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def touch_docs_and_comments(path: Path) -> None:
    """Edit every docstring, add comments and blank lines: nothing that changes the code."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            line = body[0].lineno - 1
            quote = '"""' if '"""' in lines[line] else "'''"
            lines[line] = lines[line].replace(quote, quote + "Edited. ", 1)
    path.write_text("# an added comment\n\n" + "".join(lines) + "\n\n# another one\n")
