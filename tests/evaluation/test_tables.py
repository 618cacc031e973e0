"""Table 1 ordering and formatting from synthetic score JSONs; per-dataset table; the plot."""

from __future__ import annotations

import json
import types

import pandas as pd
import pytest

from medinjection.evaluation.tables import write_table1
from medinjection.stages.score import write_score_manifest
from tests.conftest import load_script

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
            "em_mcq_low": em - 0.11, "em_mcq_high": em + 0.09,
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
        "n_seeds", "em_sd", "judge_sd", "em_p_vs_base", "judge_p_vs_base",
        "em_mcq_low", "em_mcq_high", "em_mcqu_low", "em_mcqu_high",
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
    assert (
        "| base | 34.53 | [29.53, 39.53] | 0.36 | [0.26, 0.46] | 33.53 [23.53, 43.53] | 35.53 | 1 |"
        in markdown
    )  # em_mcqu has no interval in these score files
    assert table.loc[0, "em_mcq_low"] == 23.53 and pd.isna(table.loc[0, "em_mcqu_low"])
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


def _significance_csv(tmp_path, rows):
    path = tmp_path / "significance.csv"
    frame = pd.DataFrame(
        [{"model_a": a, "model_b": "base", "comparison": "vs_base", "metric": metric,
          "p_adjusted": p, "correction": "holm"} for a, metric, p in rows]
    )  # fmt: skip
    frame.to_csv(path, index=False)
    return path


def _score_manifests(files):
    """Each file's manifest, as the score rule writes it (one per model: here one per file)."""
    manifests = [path.with_name(f"{path.name}.manifest.json") for path in files]
    for manifest, path in zip(manifests, files, strict=True):
        write_score_manifest(manifest, [path])
    return [str(m) for m in manifests]


def _table1_smk(tmp_path, score_files, significance):
    out = tmp_path / "tables"
    names = {"csv": "table1.csv", "md": "table1.md", "tex": "table1.tex",
             "per_dataset": "per_dataset.csv", "per_dataset_md": "per_dataset.md"}  # fmt: skip
    return types.SimpleNamespace(
        input=types.SimpleNamespace(scores=[str(p) for p in score_files],
                                    significance=str(significance),
                                    manifests=_score_manifests(score_files)),
        output=types.SimpleNamespace(**{k: str(out / v) for k, v in names.items()}),
        params=types.SimpleNamespace(model_order=ORDER, alpha=0.05),
        log=[str(tmp_path / "table1.log")],
    )  # fmt: skip


def test_table1_significance_markers_and_latex(tmp_path, score_files):
    significance = _significance_csv(
        tmp_path, [("NAT", "em", 0.001), ("NAT", "judge", 0.30), ("SYN", "em", 0.049),
                   ("ALL", "em", 0.051), ("ALL", "judge", 0.01)],
    )  # fmt: skip
    load_script("table1").main(_table1_smk(tmp_path, score_files, significance))
    out = tmp_path / "tables"
    table = pd.read_csv(out / "table1.csv").set_index("model")
    assert table.loc["NAT", "em_p_vs_base"] == 0.001 and pd.isna(table.loc["base", "em_p_vs_base"])
    markdown = (out / "table1.md").read_text()
    assert "| NAT | 40.59* |" in markdown and "| 0.24 | [0.14, 0.34]" in markdown
    assert "| SYN | 29.73* |" in markdown and "| ALL | 40.97 |" in markdown
    assert "| 0.25* |" in markdown and "holm-adjusted p < 0.05" in markdown
    tex = (out / "table1.tex").read_text()
    assert tex.startswith("\\begin{table}") and "\\toprule" in tex and "\\bottomrule" in tex
    assert "base & 34.53 {\\small [29.53, 39.53]} & 0.36 {\\small [0.26, 0.46]} \\\\" in tex
    assert "NAT & 40.59$^{*}$ {\\small [35.59, 45.59]} & 0.24 {\\small" in tex
    assert "EM (\\%)" in tex and "in percent" in tex and "\\label{tab:table1}" in tex
    lines = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert [line.split(" & ")[0] for line in lines[1:]] == ["base", "NAT", "SYN", "ALL"]
    per_md = (out / "per_dataset.md").read_text()
    assert "## Exact match, constrained decoding (%) (`em_constrained`)" in per_md
    assert "| base | 34.53 |" in per_md  # no interval bounds in these score files
    assert "## LLM-as-a-judge (0-1) (`judge`)" in per_md and "| NAT | 0.24 |" in per_md


def test_table1_refuses_a_score_file_changed_after_score_wrote_it(tmp_path, score_files):
    from medinjection.manifests import ManifestMismatch

    smk = _table1_smk(tmp_path, score_files, _significance_csv(tmp_path, []))
    edited = score_files[1]
    edited.write_text(edited.read_text().replace('"em": 0.34531', '"em": 0.94531'))
    refused = rf"^{edited}: 1 rows, sha256 .* after rule score wrote it\. Rerun it \(snakemake "
    with pytest.raises(ManifestMismatch, match=refused + r"--forcerun score\), then table1$"):
        load_script("table1").main(smk)
    assert not (tmp_path / "tables" / "table1.csv").exists()


def test_tex_escape_of_model_names():
    from medinjection.evaluation.tables import _tex_escape

    assert _tex_escape("NAT_TRAD & 5% {x}") == r"NAT\_TRAD \& 5\% \{x\}"
    assert _tex_escape("a\\b") == r"a\textbackslash{}b"


def test_table1_latex_with_seeds(tmp_path, score_files):
    seeds = [_score_json(tmp_path, f"TRAD/seed{s}", em, j) for s, em, j in
             ((42, 0.30, 0.20), (43, 0.36, 0.30))]  # fmt: skip
    significance = _significance_csv(tmp_path, [("TRAD", "em", 0.5)])
    load_script("table1").main(_table1_smk(tmp_path, [*seeds, *score_files], significance))
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert "TRAD & 33.00 $\\pm$ 4.24 & 0.25 $\\pm$ 0.07 \\\\" in tex
    per_md = (tmp_path / "tables" / "per_dataset.md").read_text()
    assert "| TRAD | 33.00 ± 4.24 |" in per_md


def test_per_dataset_wide_table_intervals_and_missing_cells():
    from medinjection.evaluation.per_dataset import wide_table

    long = pd.DataFrame(
        [("base", "a-mcq", "mcq", "em_constrained", 0.5), ("base", "a-mcq", "mcq",
          "em_constrained_low", 0.4), ("base", "a-mcq", "mcq", "em_constrained_high", 0.6),
         ("base", "b-mcqu", "mcqu", "em_constrained", 0.25),
         ("NAT/seed42", "a-mcq", "mcq", "em_constrained", 0.7)],
        columns=["model", "testset", "task", "metric", "value"],
    )  # fmt: skip
    table = wide_table(long, "em_constrained", ORDER)
    assert list(table.index) == ["base", "NAT"] and list(table.columns) == ["a-mcq", "b-mcqu"]
    assert table.loc["base", "a-mcq"] == "50.00 [40.00, 60.00]"
    assert table.loc["base", "b-mcqu"] == "25.00" and table.loc["NAT", "b-mcqu"] == "–"


def _bar_heights(ax):
    return [patch.get_height() for patch in ax.patches]


def _tick_labels(ax, axis="x"):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [label.get_text() for label in ticks]


def test_plot_scripts_draw_table1_and_heatmap(tmp_path, score_files, saved_figures):
    significance = _significance_csv(tmp_path, [("NAT", "em", 0.001)])
    load_script("table1").main(_table1_smk(tmp_path, score_files, significance))
    out = tmp_path / "tables"
    png = tmp_path / "plots" / "table1.png"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(csv=str(out / "table1.csv")),
        output=types.SimpleNamespace(png=str(png)),
        log=[str(tmp_path / "plot.log")],
    )
    load_script("plot_table1").main(smk)
    table = pd.read_csv(out / "table1.csv")
    em_ax, judge_ax = saved_figures["table1.png"].axes
    for ax, column, label, top in ((em_ax, "em", "Exact match (%)", 100),
                                   (judge_ax, "judge", "LLM-as-a-judge (0-1)", 1)):  # fmt: skip
        assert ax.get_ylabel() == label and ax.get_ylim() == (0, top)
        assert _tick_labels(ax) == list(table["model"]) == ["base", "NAT", "SYN", "ALL"]
        assert _bar_heights(ax) == pytest.approx(list(table[column]))
    assert png.is_file()
    heat = tmp_path / "plots" / "heat.png"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(csv=str(out / "per_dataset.csv")),
        output=types.SimpleNamespace(png=str(heat)),
        params=types.SimpleNamespace(model_order=ORDER),
        log=[str(tmp_path / "heat.log")],
    )
    load_script("plot_per_dataset").main(smk)
    from medinjection.stages.report import heatmap_matrix

    ax = saved_figures["heat.png"].axes[0]
    matrix = heatmap_matrix(pd.read_csv(out / "per_dataset.csv"), ORDER)
    assert _tick_labels(ax, "y") == list(matrix.index) == ["base", "NAT", "SYN", "ALL"]
    assert _tick_labels(ax) == list(matrix.columns) == ["x-mcqu", "y-oeq"]
    assert (ax.images[0].get_array() == matrix.to_numpy(float)).all()
    cells = [text.get_text() for text in ax.texts]
    assert cells == [f"{value:.1f}" for value in matrix.to_numpy(float).ravel()]
    assert heat.is_file()


def test_heatmap_matrix_picks_em_and_judge():
    from medinjection.stages.report import heatmap_matrix

    long = pd.DataFrame(
        [("base", "a-mcq", "mcq", "em_constrained", 0.5),
         ("base", "a-mcq", "mcq", "em_greedy", 0.1),
         ("base", "c-oeq", "oeq", "judge", 0.25), ("base", "c-oeq", "oeq", "bleu", 0.9),
         ("NAT/seed42", "a-mcq", "mcq", "em_constrained", 0.6),
         ("NAT/seed43", "a-mcq", "mcq", "em_constrained", 0.8)],
        columns=["model", "testset", "task", "metric", "value"],
    )  # fmt: skip
    matrix = heatmap_matrix(long, ORDER)
    assert list(matrix.index) == ["base", "NAT"] and list(matrix.columns) == ["a-mcq", "c-oeq"]
    assert matrix.loc["base", "a-mcq"] == 50.0 and matrix.loc["base", "c-oeq"] == 25.0
    assert matrix.loc["NAT", "a-mcq"] == pytest.approx(70.0)  # seeds averaged


def _oeq_items(path, model, judge, lengths):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medinjection.evaluation.scoring import ITEM_METRICS, ITEM_SCHEMA

    rows = []
    for k, (score, length) in enumerate(zip(judge, lengths, strict=True)):
        row = dict.fromkeys(ITEM_METRICS)
        row.update(model=model, testset="c-oeq", task="oeq", id=f"c-oeq:{k}", judge=score,
                   length_chars=length)  # fmt: skip
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), path)
    return path


def test_model_length_summary(tmp_path):
    from medinjection.stages.report import model_length_summary

    files = [
        _oeq_items(tmp_path / "b.parquet", "base", [1.0, 1.0], [3000.0, 1000.0]),
        _oeq_items(tmp_path / "n1.parquet", "NAT/seed42", [0.0, 1.0], [100.0, 300.0]),
        _oeq_items(tmp_path / "n2.parquet", "NAT/seed43", [0.0, 0.0], [300.0, 100.0]),
    ]
    summary = model_length_summary(files, ORDER).set_index("model")
    assert list(summary.index) == ["base", "NAT"]
    assert summary.loc["base", "judge"] == 1.0 and summary.loc["base", "length_chars"] == 2000.0
    assert summary.loc["NAT", "judge"] == 0.25 and summary.loc["NAT", "length_chars"] == 200.0


def test_judge_length_plot(tmp_path, saved_figures):
    import json

    scores = tmp_path / "item_scores.csv"
    frame = pd.DataFrame(
        {"id": range(6), "human": [1, 0, 1, 0, 1, 0], "judge": [1, 1, 0, 0, 1, 0],
         "length_chars": [10, 2000, 50, 30, 400, 5]}
    )  # fmt: skip
    frame.to_csv(scores, index=False)
    selection = tmp_path / "sel.json"
    selection.write_text(json.dumps({"selected": "medgemma"}))
    models = [
        _oeq_items(tmp_path / "b.parquet", "base", [1.0, 1.0], [3000.0, 1000.0]),
        _oeq_items(tmp_path / "n.parquet", "NAT/seed42", [0.0, 1.0], [100.0, 300.0]),
    ]
    png = tmp_path / "plots" / "judge_vs_length.png"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(scores=str(scores), selection=str(selection),
                                    model_scores=[str(p) for p in models],
                                    manifests=_score_manifests(models)),
        output=types.SimpleNamespace(png=str(png)),
        params=types.SimpleNamespace(model_order=ORDER),
        log=[str(tmp_path / "p.log")],
    )  # fmt: skip
    load_script("plot_judge_length").main(smk)
    annotated, models_ax = saved_figures["judge_vs_length.png"].axes
    assert annotated.get_ylabel() == "judge medgemma verdict"
    oui, non = annotated.collections  # physician labels 1 then 0
    assert [text.get_text() for text in annotated.get_legend().get_texts()] == [
        "physician: Oui", "physician: Non"]  # fmt: skip
    assert sorted(oui.get_offsets()[:, 0]) == [10, 50, 400]  # lengths of the human-1 items
    assert sorted(non.get_offsets()[:, 0]) == [5, 30, 2000]
    # verdicts are jittered by at most 0.08 around the judge's 0/1
    assert list(oui.get_offsets()[:, 1].round()) == [1, 0, 1]
    points = models_ax.collections[0].get_offsets()
    assert points.tolist() == [[2000.0, 1.0], [200.0, 0.5]]  # base, NAT: mean length, judge
    assert [text.get_text() for text in models_ax.texts] == ["base", "NAT"]
    assert png.is_file()
