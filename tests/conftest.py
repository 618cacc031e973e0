"""Fixtures shared by test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import demo_run


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed demo run for the whole session (tests/test_demo_e2e.py and the rerun
    table of tests/test_partial_reruns.py): built once, then only read and dry-run."""
    return demo_run(tmp_path_factory.mktemp("demo"))
