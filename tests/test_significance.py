"""Paired significance tests, multiple-comparison corrections and the significance table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medinjection.evaluation.scoring import ITEM_METRICS, ITEM_SCHEMA
from medinjection.evaluation.significance import (
    comparison_pairs,
    load_items,
    significance_frame,
    write_significance,
)
from medinjection.evaluation.stats import benjamini_hochberg, holm, paired_bootstrap

BOOT = {"samples": 500, "seed": 42}


def test_paired_bootstrap_identical_systems_give_p_one():
    a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    result = paired_bootstrap([a], [a], 300, seed=0)
    assert result.diff == 0.0 and result.p == 1.0
    assert (result.low, result.high) == (0.0, 0.0)
    assert result.n == 6


def test_paired_bootstrap_clearly_different_systems_give_small_p():
    better, worse = [1.0] * 60, [1.0, 0.0, 0.0] * 20
    result = paired_bootstrap([better], [worse], 1000, seed=0)
    assert result.diff == pytest.approx(2 / 3)
    assert result.p < 0.01
    assert 0.5 < result.low < 2 / 3 < result.high < 0.8
    again = paired_bootstrap([better], [worse], 1000, seed=0)
    assert again == result  # reproducible under the seed
    assert paired_bootstrap([better], [worse], 1000, seed=1).low != result.low


def test_paired_bootstrap_pairs_items_not_marginals():
    # a and b are right on complementary items: equal means, a mean difference of 0, p high
    a, b = [1.0, 0.0] * 20, [0.0, 1.0] * 20
    result = paired_bootstrap([a], [b], 500, seed=0)
    assert result.diff == 0.0 and result.p > 0.5
    # a small consistent gain on many items is significant even though both means are high
    x = [1.0] * 95 + [0.0] * 5
    y = [1.0] * 85 + [0.0] * 15
    assert paired_bootstrap([x], [y], 2000, seed=0).p < 0.05


def test_paired_bootstrap_stratified_is_mean_of_task_differences():
    # task 1: diff 1.0 on 2 items; task 2: diff 0 on 8 items -> macro diff 0.5 (pooled: 0.2)
    result = paired_bootstrap([[1.0, 1.0], [0.0] * 8], [[0.0, 0.0], [0.0] * 8], 200, seed=0)
    assert result.diff == pytest.approx(0.5)
    assert result.low == result.high == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([[1.0, 0.0]], [[1.0]], 10, seed=0)


def test_holm_and_bh_hand_computed():
    p = [0.01, 0.04, 0.03, float("nan"), 0.20]
    # Holm, m = 4 finite: sorted 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> 0.09 (monotone), 0.20
    assert holm(p)[:3] == pytest.approx([0.04, 0.09, 0.09])
    assert np.isnan(holm(p)[3]) and holm(p)[4] == pytest.approx(0.20)
    # BH: 0.01*4/1=0.04, 0.03*4/2=0.06, 0.04*4/3=0.0533, 0.20*4/4=0.2 -> step-up minima
    bh = benjamini_hochberg(p)
    assert bh[0] == pytest.approx(0.04)
    assert bh[1] == pytest.approx(0.04 * 4 / 3) and bh[2] == pytest.approx(0.04 * 4 / 3)
    assert bh[4] == pytest.approx(0.20) and np.isnan(bh[3])
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_comparison_pairs_order():
    pairs = comparison_pairs(["base", "NAT", "TRAD", "SYN"])
    assert pairs[:3] == [("NAT", "base", "vs_base"), ("TRAD", "base", "vs_base"),
                         ("SYN", "base", "vs_base")]  # fmt: skip
    assert pairs[3:] == [("NAT", "TRAD", "mixture_pair"), ("NAT", "SYN", "mixture_pair"),
                         ("TRAD", "SYN", "mixture_pair")]  # fmt: skip


def _items(model: str, mcq: list[float], mcqu: list[float], judge: list[float]) -> list[dict]:
    rows = []
    for task, values, testset in (("mcq", mcq, "a-mcq"), ("mcqu", mcqu, "b-mcqu"),
                                  ("oeq", judge, "c-oeq")):  # fmt: skip
        for k, value in enumerate(values):
            row = {name: None for name in ITEM_METRICS}
            row.update(model=model, testset=testset, task=task, id=f"{testset}:{k}")
            row["judge" if task == "oeq" else "em_constrained"] = value
            rows.append(row)
    return rows


def _write(path, rows):
    pq.write_table(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), path)
    return path


def test_significance_table_on_constructed_models(tmp_path):
    n = 40
    files = [
        _write(tmp_path / "base.parquet", _items("base", [0.0] * n, [0.0] * n, [0.0] * n)),
        # NAT is much better than base on MCQ/MCQU, two seeds with identical items
        _write(tmp_path / "nat42.parquet", _items("NAT/seed42", [1.0] * n, [1.0] * n, [0.0] * n)),
        _write(tmp_path / "nat43.parquet",
               _items("NAT/seed43", [1.0] * n, [0.0, 1.0] * (n // 2), [0.0] * n)),
        # TRAD is identical to base
        _write(tmp_path / "trad.parquet", _items("TRAD/seed42", [0.0] * n, [0.0] * n, [0.0] * n)),
    ]  # fmt: skip
    items = load_items(files)
    assert items["NAT"].attrs["seeds"] == 2
    # seed average per item: mcqu items alternate 0.5 / 1.0
    nat_mcqu = items["NAT"][items["NAT"].task == "mcqu"]["em_constrained"]
    assert nat_mcqu.mean() == pytest.approx(0.75)
    frame = significance_frame(items, ["base", "NAT", "TRAD"], ["em", "em_mcq", "judge"],
                               "holm", 0.05, BOOT)  # fmt: skip
    em = frame[frame.metric == "em"].set_index(["model_a", "model_b"])
    assert list(em.index) == [("NAT", "base"), ("TRAD", "base"), ("NAT", "TRAD")]
    assert em.loc[("NAT", "base"), "diff"] == pytest.approx((1.0 + 0.75) / 2)
    assert em.loc[("NAT", "base"), "p"] < 0.01 and em.loc[("NAT", "base"), "significant"]
    assert em.loc[("TRAD", "base"), "p"] == 1.0 and not em.loc[("TRAD", "base"), "significant"]
    assert em.loc[("NAT", "base"), "seeds_a"] == 2 and em.loc[("NAT", "base"), "n_items"] == 2 * n
    # Holm within the metric: the smallest of 3 p-values is multiplied by 3
    assert em.loc[("NAT", "base"), "p_adjusted"] == pytest.approx(3 * em.loc[("NAT", "base"), "p"])
    judge = frame[frame.metric == "judge"]
    assert (judge["diff"] == 0.0).all() and (judge["p"] == 1.0).all()
    assert set(frame["correction"]) == {"holm"}


def test_significance_refuses_different_items(tmp_path):
    files = [
        _write(tmp_path / "base.parquet", _items("base", [0.0] * 4, [0.0] * 4, [])),
        _write(tmp_path / "nat.parquet", _items("NAT/seed42", [1.0] * 5, [0.0] * 4, [])),
    ]
    with pytest.raises(ValueError, match="different items"):
        significance_frame(load_items(files), ["base", "NAT"], ["em"], "holm", 0.05, BOOT)
    with pytest.raises(KeyError, match="valid"):
        significance_frame(load_items(files), ["base", "NAT"], ["bleu"], "holm", 0.05, BOOT)


def test_write_significance_csv(tmp_path):
    files = [
        _write(tmp_path / "base.parquet", _items("base", [0.0, 1.0] * 10, [0.0] * 20, [1.0] * 5)),
        _write(tmp_path / "nat.parquet", _items("NAT/seed42", [1.0] * 20, [1.0] * 20, [0.0] * 5)),
    ]
    out = tmp_path / "tables" / "significance.csv"
    write_significance(files, ["base", "NAT"], ["em", "judge"], "bh", 0.05, BOOT, out)
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["model_a", "model_b", "comparison", "metric"]
    assert table.loc[table.metric == "judge", "diff"].item() == pytest.approx(-1.0)
    assert table.loc[table.metric == "em", "value_a"].item() == pytest.approx(1.0)
    assert table.loc[table.metric == "em", "value_b"].item() == pytest.approx(0.25)
    assert set(table["correction"]) == {"bh"}
