"""Smoke run of bench/predict_speed.py at a tiny size, so that the benchmark cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import load_script


def test_predict_speed_bench_smoke(tmp_path: Path, capsys) -> None:
    bench = load_script("predict_speed", "bench")
    args = ["--n-mcqu", "5", "--n-mcq", "3", "--n-oeq", "2", "--oeq-tokens", "4",
            "--batch-size", "4", "--repeats", "1", "--json", str(tmp_path / "f.json")]  # fmt: skip
    assert bench.main(args) == 0  # 0 = identical predictions on both paths
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["items"] == 10 and figures["mismatches"] == []
    assert {task: t["n"] for task, t in figures["tasks"].items()} == {"mcqu": 5, "mcq": 3, "oeq": 2}
    assert all(t["engine_s"] > 0 and t["official_s"] > 0 for t in figures["tasks"].values())
    out = capsys.readouterr().out
    assert "predictions identical on all 10 items" in out and "ratio" in out
