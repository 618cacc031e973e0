"""The demo through a real one-node SLURM cluster with `snakemake --profile slurm`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workflow import REPO, make_workdir, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("the local SLURM cluster needs root and apt-get (Debian)")
    script = str(REPO / "tools/slurm_local.sh")
    state = Path(os.environ.get("SLURM_LOCAL_STATE", "/var/lib/medinjection-slurm"))
    started: list[tuple[str, int]] = []
    try:
        subprocess.run(["bash", script, "start"], check=True, timeout=600)
        started = _recorded_daemons(state / "started.pids")
        yield
    finally:
        # the daemons this test started, by the PIDs `start` recorded (never by name)
        subprocess.run(["bash", script, "stop"], check=True, timeout=60)
    # issue 14: `make test` used to leave munged, slurmctld and slurmd running
    left = [f"{name} (pid {pid})" for name, pid in started if _running(pid)]
    assert not left, f"still running after tools/slurm_local.sh stop: {left}"


def _recorded_daemons(path: Path) -> list[tuple[str, int]]:
    """The daemons `slurm_local.sh start` launched (none if all were already running)."""
    if not path.is_file():
        return []
    return [(name, int(pid)) for name, pid in map(str.split, path.read_text().splitlines())]


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def _slurmctld_job_ids() -> set[str]:
    log = Path("/var/log/slurm/slurmctld.log").read_text(errors="replace")
    return {
        part.split("JobId=")[1].split()[0] for part in log.split("\n") if "Allocate JobId=" in part
    }


def test_demo_runs_through_sbatch(cluster: None, tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path / "slurm")
    before = _slurmctld_job_ids()
    proc = snakemake(
        workdir,
        "--profile",
        "slurm",
        "--configfile",
        "config/demo.yaml",
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--jobs",
        "4",
        "--retries",
        "0",
        # the local test node has 2 CPUs; rules ask for up to 4 (train)
        "--max-threads",
        "2",
        slurm=True,
    )
    assert (workdir / "results/demo/tables/table1.csv").exists()
    submitted = _slurmctld_job_ids() - before
    # every job but the local rules (render_train_config, table1, plot_table1, mixture, all) went
    # through sbatch and was allocated by slurmctld
    assert len(submitted) >= 60, proc.stdout[-3000:]
    slurm_logs = list((workdir / "logs/slurm").rglob("*.log"))
    # the plugin writes logs/slurm/rule_<rule>/[<wildcards>/]<jobid>.log
    rules = {
        part.removeprefix("rule_")
        for path in slurm_logs
        for part in path.parts
        if part.startswith("rule_")
    }
    assert {"train", "predict", "judge", "score", "build_dataset"} <= rules, sorted(rules)
    assert (
        "Nothing to be done" in snakemake(workdir, "--configfile", "config/demo.yaml", "-n").stdout
    )
