"""Table 1 ordering and formatting from synthetic score JSONs; per-dataset table; the plot."""

from __future__ import annotations

import json
import types

import pandas as pd
import pytest

from medinjection.evaluation.tables import write_table1
from tests.test_judge import _load_script

ORDER = ["base", "NAT", "TRAD", "SYN", "NAT-TRAD", "NAT-SYN", "TRAD-SYN", "ALL"]


def _score_json(tmp_path, model, em, judge):
    payload = {
        "model": model,
        "testsets": {
            "x-mcqu": {"task": "mcqu", "n": 10, "em_constrained": em, "em_greedy": em / 2},
            "y-oeq": {"task": "oeq", "n": 4, "judge": judge, "bleu": 0.1, "judge_unparsable": 0},
        },
        "aggregate": {
            "em_mcq": em - 0.01, "em_mcqu": em + 0.01, "em": em, "em_low": em - 0.05,
            "em_high": em + 0.05, "judge": judge, "judge_low": judge - 0.1,
            "judge_high": judge + 0.1, "n_mcq": 5, "n_mcqu": 10, "n_oeq": 4,
        },
    }  # fmt: skip
    path = tmp_path / "scores" / f"{model.replace('/', '_')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def score_files(tmp_path):
    figures = {"ALL": (0.40971, 0.2549), "base": (0.34531, 0.3649), "SYN": (0.2973, 0.31),
               "NAT": (0.40594, 0.24)}  # fmt: skip
    return [_score_json(tmp_path, m, em, judge) for m, (em, judge) in figures.items()]


def test_table1_order_and_format(tmp_path, score_files):
    out = tmp_path / "tables"
    write_table1(score_files, ORDER, out / "t.csv", out / "t.md", out / "per.csv")
    table = pd.read_csv(out / "t.csv")
    assert list(table.columns) == [
        "model", "em", "em_low", "em_high", "judge", "judge_low", "judge_high", "em_mcq", "em_mcqu",
        "n_seeds", "em_sd", "judge_sd",
    ]  # fmt: skip
    assert list(table["model"]) == [
        "base",
        "NAT",
        "SYN",
        "ALL",
    ]  # paper order, absent rows left out
    base = table.iloc[0]
    assert base["em"] == 34.53 and base["judge"] == 0.36  # percent vs fraction, 2 decimals
    assert base["em_low"] == 29.53 and base["em_high"] == 39.53
    assert base["em_mcq"] == 33.53 and base["em_mcqu"] == 35.53
    assert table.iloc[3]["em"] == 40.97 and table.iloc[3]["judge"] == 0.25
    markdown = (out / "t.md").read_text()
    assert "| base | 34.53 | [29.53, 39.53] | 0.36 | [0.26, 0.46] | 33.53 | 35.53 | 1 |" in markdown
    assert "whatever base model" in markdown
    per = pd.read_csv(out / "per.csv")
    assert list(per.columns) == ["model", "testset", "task", "metric", "value"]
    row = per[(per.model == "base") & (per.testset == "x-mcqu") & (per.metric == "em_constrained")]
    assert row["value"].item() == pytest.approx(0.34531)
    assert per[(per.model == "NAT") & (per.metric == "n")]["value"].tolist() == [10.0, 4.0]
    assert list(dict.fromkeys(per["model"])) == ["base", "NAT", "SYN", "ALL"]


def test_table1_rows_average_training_seeds(tmp_path, score_files):
    seeds = [_score_json(tmp_path, f"TRAD/seed{s}", em, j) for s, em, j in
             ((42, 0.30, 0.20), (43, 0.36, 0.30), (44, 0.33, 0.40))]  # fmt: skip
    out = tmp_path / "tables"
    write_table1([*seeds, *score_files], ORDER, out / "t.csv", out / "t.md", out / "per.csv")
    table = pd.read_csv(out / "t.csv").set_index("model")
    trad = table.loc["TRAD"]
    # mean 33.00, sample sd of (30, 36, 33) = 3.00; judge mean 0.30, sd 0.10
    assert (trad["em"], trad["em_sd"], trad["judge"], trad["judge_sd"]) == (33.0, 3.0, 0.3, 0.1)
    assert trad["n_seeds"] == 3 and pd.isna(trad["em_low"]) and pd.isna(trad["judge_high"])
    assert pd.isna(table.loc["NAT", "em_sd"]) and table.loc["NAT", "n_seeds"] == 1
    assert "| TRAD | 33.00 ± 3.00 | [–, –] | 0.30 ± 0.10 |" in (out / "t.md").read_text()
    per = pd.read_csv(out / "per.csv")
    assert list(dict.fromkeys(per["model"]))[:5] == [
        "base",
        "NAT",
        "TRAD/seed42",
        "TRAD/seed43",
        "TRAD/seed44",
    ]


def test_table1_models_outside_the_order_come_last(tmp_path, score_files):
    extra = _score_json(tmp_path, "MY-MIX", 0.5, 0.5)
    out = tmp_path / "tables"
    write_table1([extra, *score_files], ORDER, out / "t.csv", out / "t.md", out / "per.csv")
    assert list(pd.read_csv(out / "t.csv")["model"]) == ["base", "NAT", "SYN", "ALL", "MY-MIX"]


def test_table1_rejects_a_model_twice(tmp_path, score_files):
    copy = tmp_path / "copy.json"
    copy.write_text(score_files[0].read_text())
    with pytest.raises(ValueError, match="already read"):
        write_table1([*score_files, copy], ORDER, tmp_path / "a", tmp_path / "b", tmp_path / "c")


def test_table1_and_plot_scripts(tmp_path, score_files):
    out = tmp_path / "tables"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(scores=[str(p) for p in score_files]),
        output=types.SimpleNamespace(csv=str(out / "table1.csv"), md=str(out / "table1.md"),
                                     per_dataset=str(out / "per_dataset.csv")),
        params=types.SimpleNamespace(model_order=ORDER),
        log=[str(tmp_path / "table1.log")],
    )  # fmt: skip
    _load_script("table1").main(smk)
    png = tmp_path / "plots" / "table1.png"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(csv=str(out / "table1.csv")),
        output=types.SimpleNamespace(png=str(png)),
        log=[str(tmp_path / "plot.log")],
    )
    _load_script("plot_table1").main(smk)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
