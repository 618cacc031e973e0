"""Fixtures shared by the test modules, and the one loader of workflow scripts.

Tests mirror the package: tests/sources, tests/llm, tests/modeling, tests/evaluation for
src/medinjection's sub-packages, tests/test_<module>.py for its top-level modules, tests/workflow
for whole-graph runs (rules, dry runs, partial reruns, SLURM, the demo, faults, the rehearsal),
tests/tools and tests/bench for those folders. Helpers that are not fixtures (the fake OpenAI
server, the vLLM emulator, the tiny model spec, workflow runners) live in tests/support; no test
file imports another.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import types
from pathlib import Path

import pytest
from filelock import FileLock

from tests.support.workflow import REPO, demo_run


def load_script(name: str, folder: str = "workflow/scripts") -> types.ModuleType:
    """A fresh module of `<folder>/<name>.py` (repository-relative), without running Snakemake:
    the tests call its `main(smk)` with a SimpleNamespace standing in for `snakemake`. The one
    loader for every test (tools/ and bench/ scripts too, through `folder`), imported as
    `from tests.conftest import load_script` where a helper outside a test needs it."""
    path = REPO / folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such script (load_script({name!r}, {folder!r}))")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed demo run for the whole session (tests/workflow/test_demo_e2e.py and the
    rerun table of tests/workflow/test_partial_reruns.py): built once, then only read and dry-run.

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
