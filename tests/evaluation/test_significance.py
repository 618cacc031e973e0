"""Paired significance tests, multiple-comparison corrections and the significance table."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medinjection.evaluation.scoring import ITEM_METRICS, ITEM_SCHEMA, ITEM_STATS
from medinjection.evaluation.significance import comparison_pairs, load_items, significance_frame
from medinjection.evaluation.stats import (
    benjamini_hochberg,
    holm,
    paired_bootstrap,
    paired_corpus_bootstrap,
    paired_corpus_permutation_pvalue,
    paired_permutation_pvalue,
)
from medinjection.settings import BootstrapSettings, SignificanceSettings
from medinjection.stages.report import write_significance

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
        significance_frame(load_items(files), ["base", "NAT"], ["meteor"], "holm", 0.05, BOOT)
    with pytest.raises(KeyError, match=r"method 'exact' \(valid: \['bootstrap', 'permutation'\]"):
        significance_frame(load_items(files), ["base", "NAT"], ["em"], "holm", 0.05, BOOT, "exact")


def test_write_significance_csv(tmp_path):
    files = [
        _write(tmp_path / "base.parquet", _items("base", [0.0, 1.0] * 10, [0.0] * 20, [1.0] * 5)),
        _write(tmp_path / "nat.parquet", _items("NAT/seed42", [1.0] * 20, [1.0] * 20, [0.0] * 5)),
    ]
    out = tmp_path / "tables" / "significance.csv"
    significance = SignificanceSettings(metrics=("em", "judge"), correction="bh", alpha=0.05)
    write_significance(files, ["base", "NAT"], significance, BootstrapSettings(**BOOT), out)
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["model_a", "model_b", "comparison", "metric"]
    assert table.loc[table.metric == "judge", "diff"].item() == pytest.approx(-1.0)
    assert table.loc[table.metric == "em", "value_a"].item() == pytest.approx(1.0)
    assert table.loc[table.metric == "em", "value_b"].item() == pytest.approx(0.25)
    assert set(table["correction"]) == {"bh"} and set(table["method"]) == {"bootstrap"}


# --- permutation (sign-flip) test -----------------------------------------------------------


def _exact_sign_flip_p(groups_a, groups_b) -> float:
    """Exact two-sided p of the paired swap test: all 2^n swap patterns, enumerated."""
    pairs = zip(groups_a, groups_b, strict=True)
    diffs = [np.asarray(a, float) - np.asarray(b, float) for a, b in pairs]
    sizes = [d.size for d in diffs]
    observed = np.mean([d.mean() for d in diffs])
    extreme = 0
    for signs in itertools.product((1.0, -1.0), repeat=sum(sizes)):
        cut = np.cumsum([0, *sizes])
        stat = np.mean([(d * signs[cut[k] : cut[k + 1]]).mean() for k, d in enumerate(diffs)])
        extreme += abs(stat) >= abs(observed) - 1e-12
    return extreme / 2 ** sum(sizes)


def test_permutation_identical_systems_give_p_one():
    a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert paired_permutation_pvalue([a], [a], 300, seed=0) == 1.0
    assert paired_permutation_pvalue([a, [0.5, 0.25]], [a, [0.5, 0.25]], 300, seed=0) == 1.0


def test_permutation_clearly_different_systems_give_small_p_reproducibly():
    better, worse = [1.0] * 60, [1.0, 0.0, 0.0] * 20
    p = paired_permutation_pvalue([better], [worse], 2000, seed=0)
    assert p < 0.01
    assert p == pytest.approx(1 / 2001)  # only 2 of the 2^40 swap patterns of the 40 gains reach it
    assert paired_permutation_pvalue([better], [worse], 2000, seed=0) == p
    # a borderline case: the p-value is a Monte Carlo estimate that depends on the seed
    x, y = [1.0] * 6 + [0.0] * 4, [0.0] * 3 + [1.0] * 3 + [0.0] * 4
    p0 = paired_permutation_pvalue([x], [y], 500, seed=0)
    assert p0 == paired_permutation_pvalue([x], [y], 500, seed=0)
    assert p0 != paired_permutation_pvalue([x], [y], 500, seed=1)
    with pytest.raises(ValueError, match="same items"):
        paired_permutation_pvalue([[1.0, 0.0]], [[1.0]], 10, seed=0)


def test_permutation_agrees_with_exact_enumeration_of_all_sign_flips():
    # hand case, n = 8: six items differ by +1, one by -1, one tie (observed mean 5/8)
    a = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.5]
    b = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.5]
    # |sum of seven ±1| >= 5 needs 0, 1, 6 or 7 minus signs: 1 + 7 + 7 + 1 = 16 patterns of 128,
    # times 2 for the tied last item: 32 / 256
    assert _exact_sign_flip_p([a], [b]) == pytest.approx(1 / 8)
    p = paired_permutation_pvalue([a], [b], 20_000, seed=7)
    assert p == pytest.approx(1 / 8, abs=0.01)  # 4 Monte Carlo standard errors
    # real-valued differences in two strata (the macro statistic), n = 4 + 4
    ga = [[0.9, 0.4, 0.7, 0.2], [1.0, 0.0, 1.0, 1.0]]
    gb = [[0.3, 0.5, 0.1, 0.2], [0.0, 0.0, 1.0, 0.0]]
    exact = _exact_sign_flip_p(ga, gb)
    assert 0.05 < exact < 0.5
    assert paired_permutation_pvalue(ga, gb, 20_000, seed=3) == pytest.approx(exact, abs=0.015)


def test_bootstrap_and_permutation_agree_on_clear_cases():
    better, worse = [1.0] * 50 + [0.0] * 10, [1.0] * 20 + [0.0] * 40
    boot = paired_bootstrap([better], [worse], 2000, seed=0)
    perm = paired_permutation_pvalue([better], [worse], 2000, seed=0)
    assert boot.p < 0.01 and perm < 0.01
    same_a, same_b = [1.0, 0.0] * 30, [0.0, 1.0] * 30  # complementary: mean difference 0
    assert paired_bootstrap([same_a], [same_b], 2000, seed=0).p > 0.5
    assert paired_permutation_pvalue([same_a], [same_b], 2000, seed=0) > 0.5


def test_significance_table_with_the_permutation_method(tmp_path):
    n = 40
    files = [
        _write(tmp_path / "base.parquet", _items("base", [0.0] * n, [0.5] * n, [0.0] * n)),
        _write(tmp_path / "nat.parquet", _items("NAT/seed42", [1.0] * n, [1.0] * n, [0.0] * n)),
        _write(tmp_path / "trad.parquet", _items("TRAD/seed42", [0.0] * n, [0.5] * n, [0.0] * n)),
    ]
    items = load_items(files)
    order = ["base", "NAT", "TRAD"]
    boot = significance_frame(items, order, ["em", "judge"], "holm", 0.05, BOOT)
    perm = significance_frame(items, order, ["em", "judge"], "holm", 0.05, BOOT, "permutation")
    assert set(perm["method"]) == {"permutation"} and set(boot["method"]) == {"bootstrap"}
    # same differences and bootstrap intervals, p-values from the method
    same = ["model_a", "model_b", "metric", "value_a", "value_b", "diff", "diff_low", "diff_high"]
    pd.testing.assert_frame_equal(perm[same], boot[same])
    assert list(perm["significant"]) == list(boot["significant"])
    em = perm[perm.metric == "em"].set_index(["model_a", "model_b"])
    assert em.loc[("NAT", "base"), "p"] == pytest.approx(1 / 501)
    assert em.loc[("TRAD", "base"), "p"] == 1.0
    assert (perm.loc[perm.metric == "judge", "p"] == 1.0).all()


# --- corpus BLEU / chrF from per-item sufficient statistics ---------------------------------

REFS = [
    "le patient présente une hépatite virale aiguë",
    "une fièvre élevée persistante depuis trois jours",
    "adrénaline en intramusculaire à la cuisse",
    "arrêt des anticoagulants avant l'opération",
    "la créatinine est élevée chez ce patient âgé",
    "échographie abdominale en première intention",
]
GOOD = [
    "le patient présente une hépatite virale aiguë",
    "fièvre élevée persistante depuis trois jours",
    "adrénaline intramusculaire à la cuisse",
    "arrêt des anticoagulants avant l'opération",
    "la créatinine est élevée chez ce patient",
    "échographie abdominale en première intention",
]
BAD = ["je ne sais pas", "repos", "aucune idée", "voir un médecin", "non", "peut-être"]


def _oeq_items(model: str, hyps: list[str], refs: list[str] = REFS) -> list[dict]:
    from medinjection.evaluation import metrics

    stats = {c: metrics.corpus_stats(m, hyps, refs).tolist() for c, m in ITEM_STATS.items()}
    rows = []
    for k in range(len(hyps)):
        row = dict.fromkeys(ITEM_METRICS)
        row.update(model=model, testset="c-oeq", task="oeq", id=f"c-oeq:{k}", judge=0.0)
        rows.append(row | {column: stats[column][k] for column in ITEM_STATS})
    return rows


def _sacrebleu_corpus(name: str, hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    direct = sacrebleu.corpus_bleu if name == "bleu" else sacrebleu.corpus_chrf
    return direct(hyps, [refs]).score / 100


def test_corpus_significance_values_are_sacrebleu_corpus_scores(tmp_path):
    files = [
        _write(tmp_path / "base.parquet", _oeq_items("base", BAD)),
        _write(tmp_path / "nat.parquet", _oeq_items("NAT/seed42", GOOD)),
    ]
    frame = significance_frame(load_items(files), ["base", "NAT"], ["bleu", "chrf"], "holm",
                               0.05, BOOT)  # fmt: skip
    for name in ("bleu", "chrf"):
        row = frame[frame.metric == name].iloc[0]
        good, bad = _sacrebleu_corpus(name, GOOD, REFS), _sacrebleu_corpus(name, BAD, REFS)
        assert 0.5 < good < 1.0 and bad < 0.2
        assert row["value_a"] == pytest.approx(good) and row["value_b"] == pytest.approx(bad)
        assert row["diff"] == pytest.approx(good - bad) and row["n_items"] == len(REFS)
        assert row["diff_low"] <= row["diff"] <= row["diff_high"]


def test_corpus_stats_of_several_seeds_pool_their_outputs(tmp_path):
    other = [*GOOD[:3], *BAD[3:]]
    files = [
        _write(tmp_path / "base.parquet", _oeq_items("base", BAD)),
        _write(tmp_path / "nat42.parquet", _oeq_items("NAT/seed42", GOOD)),
        _write(tmp_path / "nat43.parquet", _oeq_items("NAT/seed43", other)),
    ]
    frame = significance_frame(load_items(files), ["base", "NAT"], ["bleu", "chrf"], "holm",
                               0.05, BOOT)  # fmt: skip
    for name in ("bleu", "chrf"):
        row = frame[frame.metric == name].iloc[0]
        pooled = _sacrebleu_corpus(name, GOOD + other, REFS + REFS)  # both seeds' outputs
        assert row["value_a"] == pytest.approx(pooled) and row["seeds_a"] == 2


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
def test_corpus_significance_identical_clear_and_reproducible(tmp_path, method):
    files = [
        _write(tmp_path / "base.parquet", _oeq_items("base", BAD * 5, REFS * 5)),
        _write(tmp_path / "nat.parquet", _oeq_items("NAT/seed42", GOOD * 5, REFS * 5)),
        _write(tmp_path / "trad.parquet", _oeq_items("TRAD/seed42", BAD * 5, REFS * 5)),
    ]
    items = load_items(files)
    order = ["base", "NAT", "TRAD"]
    frame = significance_frame(items, order, ["bleu", "chrf"], "holm", 0.05, BOOT, method)
    assert set(frame["method"]) == {method}
    by = frame.set_index(["metric", "model_a", "model_b"])
    for name in ("bleu", "chrf"):
        same = by.loc[(name, "TRAD", "base")]
        assert same["diff"] == 0.0 and same["p"] == 1.0 and not same["significant"]
        assert same["diff_low"] == same["diff_high"] == 0.0
        clear = by.loc[(name, "NAT", "base")]
        assert clear["p"] < 0.01 and clear["significant"]
    again = significance_frame(items, order, ["bleu", "chrf"], "holm", 0.05, BOOT, method)
    pd.testing.assert_frame_equal(frame, again)
    other_seed = significance_frame(items, order, ["chrf"], "holm", 0.05,
                                    {"samples": 500, "seed": 7}, method)  # fmt: skip
    clear_other = other_seed.set_index(["model_a", "model_b"]).loc[("NAT", "base")]
    assert clear_other["diff"] == by.loc[("chrf", "NAT", "base"), "diff"]
    assert clear_other["diff_low"] != by.loc[("chrf", "NAT", "base"), "diff_low"]


@pytest.mark.parametrize(("name", "expected"), [("bleu", 16 / 64), ("chrf", 24 / 64)])
def test_corpus_permutation_agrees_with_exact_enumeration(name, expected):
    from medinjection.evaluation import metrics

    hyps_a, hyps_b = GOOD[:5] + BAD[5:], BAD[:4] + GOOD[4:]  # a wins 4 items, b 1, 1 tie
    score = metrics.corpus_scorer(name)
    a, b = (metrics.corpus_stats(name, h, REFS) for h in (hyps_a, hyps_b))
    observed = score(a.sum(0)) - score(b.sum(0))
    extreme = 0
    for swap in itertools.product((False, True), repeat=len(REFS)):  # all 2^6 exchanges
        mask = np.array(swap)[:, None]
        sa, sb = np.where(mask, b, a).sum(0), np.where(mask, a, b).sum(0)
        extreme += abs(score(sa) - score(sb)) >= abs(observed) - 1e-12
    assert extreme / 2 ** len(REFS) == expected
    p = paired_corpus_permutation_pvalue(a, b, score, 20_000, seed=0)
    assert p == pytest.approx(expected, abs=0.015)  # 4 Monte Carlo standard errors
    assert paired_corpus_permutation_pvalue(a, b, score, 20_000, seed=0) == p
    boot = paired_corpus_bootstrap(a, b, score, 500, seed=0)
    assert boot.diff == pytest.approx(observed) and boot.n == len(REFS)
    assert paired_corpus_bootstrap(a, b, score, 500, seed=0) == boot
    with pytest.raises(ValueError, match="same items"):
        paired_corpus_bootstrap(a, b[:3], score, 10, seed=0)


def test_corpus_significance_needs_the_item_statistics(tmp_path):
    old = [{k: v for k, v in row.items() if k not in ITEM_STATS} for row in _oeq_items("base", BAD)]
    files = [
        _write(tmp_path / "base.parquet", old),  # an item file from before the statistics
        _write(tmp_path / "nat.parquet", _oeq_items("NAT/seed42", GOOD)),
    ]
    items = load_items(files)
    assert significance_frame(items, ["base", "NAT"], ["judge"], "holm", 0.05, BOOT).shape[0] == 1
    with pytest.raises(ValueError, match=r"'base' has no bleu_stats .* rerun the score rule"):
        significance_frame(items, ["base", "NAT"], ["bleu"], "holm", 0.05, BOOT)
