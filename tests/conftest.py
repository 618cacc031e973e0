"""Fixtures shared by test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.workflow_helpers import demo_run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: --dist loadgroup) a test file runs on one worker (its
    module fixtures are built once), and every file using the session demo run goes to the same
    worker, so the demo is run once per session, not once per worker."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    demo_modules = {item.module.__name__ for item in items if "demo_workdir" in item.fixturenames}
    for item in items:
        name = item.module.__name__
        item.add_marker(pytest.mark.xdist_group("demo" if name in demo_modules else name))


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
    return demo_run(tmp_path_factory.mktemp("demo"))
