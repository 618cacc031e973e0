"""config/README.md documents every key of the schema and is current."""

from __future__ import annotations

import subprocess
import sys

from tests.support.workflow import REPO


def test_config_readme_is_generated_from_current_schema() -> None:
    proc = subprocess.run([sys.executable, "tools/config_doc.py", "--check"], cwd=REPO)
    assert proc.returncode == 0, "run `python tools/config_doc.py` and commit config/README.md"


def test_every_key_has_a_description() -> None:
    lines = (REPO / "config/README.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) > 100
    assert not [row for row in rows if row.rstrip().endswith("|  |")]
