"""Fixtures shared by test modules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from tests.workflow_helpers import demo_run


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed demo run for the whole session (tests/test_demo_e2e.py and the rerun
    table of tests/test_partial_reruns.py): built once, then only read and dry-run.

    DEMO_WORKDIR=<dir> reuses a completed demo tree built with the same code (a previous
    session's, e.g. /tmp/pytest-of-$USER/pytest-<n>/demo0), to iterate on these tests.
    """
    reuse = os.environ.get("DEMO_WORKDIR")
    if reuse:
        workdir = Path(reuse)
        if not (workdir / "results/demo/tables/table1.csv").is_file():
            raise FileNotFoundError(f"DEMO_WORKDIR={reuse}: no completed demo tree there")
        return workdir
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return demo_run(tmp_path_factory.mktemp("demo"))
    # `make test` runs 2 pytest-xdist workers: the first to get here builds the demo once in
    # the session's shared temp dir, the other waits for it; each then works on its own copy
    # (copy2 keeps the mtimes, and .snakemake its metadata, so dry runs see the same tree)
    shared = tmp_path_factory.getbasetemp().parent
    built = shared / "demo-shared"
    with FileLock(str(shared / "demo-shared.lock")):
        if not (built / ".built").is_file():
            shutil.rmtree(built, ignore_errors=True)
            demo_run(built)
            (built / ".built").touch()
    copy = tmp_path_factory.mktemp("demo") / "w"
    shutil.copytree(built, copy, symlinks=True)
    return copy


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Every matplotlib figure saved during the test, by file name: the test reads its axes,
    series and labels (what a plot shows) instead of the PNG's bytes. Files are still written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    saved: dict[str, object] = {}
    original = Figure.savefig

    def savefig(self: Figure, fname: object, *args: object, **kwargs: object) -> None:
        saved[Path(str(fname)).name] = self
        original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` are skipped where torch sees no CUDA device (pyproject's marker list)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker gpu); torch sees none")
    for item in gpu_items:
        item.add_marker(skip)
