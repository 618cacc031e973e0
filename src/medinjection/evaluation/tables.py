"""Table 1 (aggregated EM and judge per model) and the long per-dataset table, from score JSONs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

TABLE1_COLUMNS: tuple[str, ...] = (
    "model", "em", "em_low", "em_high", "judge", "judge_low", "judge_high", "em_mcq", "em_mcqu",
    "n_seeds", "em_sd", "judge_sd", "em_p_vs_base", "judge_p_vs_base",
    "em_mcq_low", "em_mcq_high", "em_mcqu_low", "em_mcqu_high",
)  # fmt: skip
MARKED_METRICS: tuple[str, ...] = ("em", "judge")  # Table 1 cells marked when they differ from base
PERCENT_COLUMNS: tuple[str, ...] = (
    "em", "em_low", "em_high", "em_mcq", "em_mcqu",
    "em_mcq_low", "em_mcq_high", "em_mcqu_low", "em_mcqu_high",
)  # fmt: skip
FRACTION_COLUMNS: tuple[str, ...] = ("judge", "judge_low", "judge_high")
SKIP_KEYS: frozenset[str] = frozenset({"task", "n"})


def load_scores(score_files: list[Path]) -> dict[str, dict[str, Any]]:
    """Score JSONs keyed by their model name; a model appearing twice is an error."""
    scores: dict[str, dict[str, Any]] = {}
    for path in map(Path, score_files):
        payload = json.loads(path.read_text(encoding="utf-8"))
        model = payload["model"]
        if model in scores:
            raise ValueError(f"{path}: model {model!r} already read from another score file")
        scores[model] = payload
    return scores


def ordered_models(models: list[str], model_order: list[str]) -> list[str]:
    """Models in `model_order` first (paper order), then any others alphabetically (logged)."""
    missing = [m for m in model_order if m not in models]
    if missing:
        log.warning("table1: no score file for %s; those rows are left out", missing)
    extra = sorted(set(models) - set(model_order))
    if extra:
        log.warning("table1: models %s are not in model_order; appended at the end", extra)
    return [m for m in model_order if m in models] + extra


def _rounded(value: Any, scale: float) -> float | None:
    return None if value is None else round(float(value) * scale, 2)


def model_row(model: str) -> str:
    """Table 1 row of a model: the mixture of a '<mixture>/seed<n>' training run, else itself."""
    return model.split("/seed", 1)[0]


def _seed_summary(values: list[Any], scale: float) -> tuple[float | None, float | None]:
    """Mean and sample sd (None with one seed or a missing value) of one figure over seeds."""
    if any(value is None for value in values):
        return None, None
    mean = sum(float(v) for v in values) / len(values)
    if len(values) == 1:
        return round(mean * scale, 2), None
    var = sum((float(v) - mean) ** 2 for v in values) / (len(values) - 1)
    return round(mean * scale, 2), round(var**0.5 * scale, 2)


def _table1_row(row_name: str, aggregates: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": row_name, "n_seeds": len(aggregates)}
    for columns, scale in ((PERCENT_COLUMNS, 100.0), (FRACTION_COLUMNS, 1.0)):
        for column in columns:
            mean, sd = _seed_summary([agg.get(column) for agg in aggregates], scale)
            # Bootstrap intervals are over items of one run; with several seeds the spread
            # across seeds is reported as sd instead.
            is_bound = column.endswith(("_low", "_high"))
            row[column] = None if is_bound and len(aggregates) > 1 else mean
            if column in ("em", "judge"):
                row[f"{column}_sd"] = sd
    return row


def table1_frame(
    scores: dict[str, dict[str, Any]],
    model_order: list[str],
    significance: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Table 1 rows (one per base/mixture, mean over training seeds): EM in percent, judge 0-1,
    and the adjusted p-value of each mixture against base (from the significance table)."""
    runs: dict[str, list[str]] = {}
    for model in scores:
        runs.setdefault(model_row(model), []).append(model)
    rows = [
        _table1_row(row, [scores[m]["aggregate"] for m in sorted(runs[row])])
        for row in ordered_models(list(runs), model_order)
    ]
    frame = pd.DataFrame(rows, columns=list(TABLE1_COLUMNS))
    if significance is not None:
        vs_base = significance[significance["comparison"] == "vs_base"]
        for metric in MARKED_METRICS:
            picked = vs_base[vs_base["metric"] == metric].set_index("model_a")["p_adjusted"]
            frame[f"{metric}_p_vs_base"] = frame["model"].map(picked).astype(float)
    return frame


def per_dataset_frame(scores: dict[str, dict[str, Any]], model_order: list[str]) -> pd.DataFrame:
    """Long table (model, testset, task, metric, value) of every per-test-set figure, unrounded."""
    rows = []
    for model in sorted(scores, key=lambda m: (_order_key(model_row(m), model_order), m)):
        for testset, values in sorted(scores[model]["testsets"].items()):
            for metric, value in values.items():
                if metric in SKIP_KEYS or not isinstance(value, int | float):
                    continue
                rows.append((model, testset, values["task"], metric, float(value)))
            rows.append((model, testset, values["task"], "n", float(values["n"])))
    return pd.DataFrame(rows, columns=["model", "testset", "task", "metric", "value"])


def _order_key(row: str, model_order: list[str]) -> tuple[int, str]:
    return (model_order.index(row), "") if row in model_order else (len(model_order), row)


def _cell(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2f}"


def _with_sd(value: Any, sd: Any, pm: str = "±") -> str:
    return _cell(value) if sd is None or pd.isna(sd) else f"{_cell(value)} {pm} {_cell(sd)}"


def _with_ci(value: Any, low: Any, high: Any) -> str:
    """A value with its interval in brackets when the interval is known."""
    if low is None or pd.isna(low):
        return _cell(value)
    return f"{_cell(value)} [{_cell(low)}, {_cell(high)}]"


def _marker(p_adjusted: Any, alpha: float) -> str:
    """'*' when the adjusted p-value against base is below alpha."""
    return "*" if p_adjusted is not None and not pd.isna(p_adjusted) and p_adjusted < alpha else ""


def _note(alpha: float, correction: str) -> str:
    return (
        "EM: mean of the MCQ and MCQU exact match (constrained decoding), in percent; judge: "
        "mean binary LLM-as-a-judge score on open questions (0-1). Intervals: percentile "
        "bootstrap over items of one training run; rows trained with several seeds show the "
        "mean ± sd over seeds instead (seeds column). * = differs from the base model, paired "
        f"bootstrap on the same items, {correction}-adjusted p < {alpha:g} (all comparisons in "
        "results/tables/significance.csv). These numbers come from whatever base model, "
        "mixtures, test sets and judge this run was configured with (the demo uses a tiny "
        "random model and fixtures, so its figures mean nothing); they are not the paper's "
        "figures."
    )


def table1_markdown(frame: pd.DataFrame, alpha: float = 0.05, correction: str = "holm") -> str:
    """Markdown Table 1 with 95% intervals, significance markers, and a note on the numbers."""
    lines = [
        "| Model | EM (%) | EM 95% CI | LLM-as-a-judge | judge 95% CI | EM MCQ (%) | EM MCQU (%) "
        "| seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in frame.itertuples(index=False):
        lines.append(
            f"| {row.model} | {_with_sd(row.em, row.em_sd)}{_marker(row.em_p_vs_base, alpha)} "
            f"| [{_cell(row.em_low)}, {_cell(row.em_high)}] "
            f"| {_with_sd(row.judge, row.judge_sd)}{_marker(row.judge_p_vs_base, alpha)} "
            f"| [{_cell(row.judge_low)}, {_cell(row.judge_high)}] "
            f"| {_with_ci(row.em_mcq, row.em_mcq_low, row.em_mcq_high)} "
            f"| {_with_ci(row.em_mcqu, row.em_mcqu_low, row.em_mcqu_high)} | {row.n_seeds} |"
        )
    return "\n".join(lines) + "\n\n" + _note(alpha, correction) + "\n"


TEX_SPECIALS: dict[str, str] = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}  # fmt: skip


def _tex_escape(text: str) -> str:
    """Text with LaTeX special characters escaped (one pass, so escapes are not re-escaped)."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: TEX_SPECIALS[m.group(0)], text)


def _tex_cell(value: Any, sd: Any, low: Any, high: Any, marker: str) -> str:
    main = _with_sd(value, sd, pm="$\\pm$").replace("–", "--")
    star = "$^{*}$" if marker else ""
    if low is None or pd.isna(low):
        return f"{main}{star}"
    return f"{main}{star} {{\\small [{_cell(low)}, {_cell(high)}]}}"


def table1_latex(frame: pd.DataFrame, alpha: float = 0.05, correction: str = "holm") -> str:
    """LaTeX (booktabs) Table 1: EM and judge with 95% intervals and significance markers."""
    lines = [
        "\\begin{table}[t]", "\\centering", "\\begin{tabular}{lrr}", "\\toprule",
        "Model & EM (\\%) & LLM-as-a-judge \\\\", "\\midrule",
    ]  # fmt: skip
    for row in frame.itertuples(index=False):
        em = _tex_cell(row.em, row.em_sd, row.em_low, row.em_high, _marker(row.em_p_vs_base, alpha))
        judge = _tex_cell(
            row.judge, row.judge_sd, row.judge_low, row.judge_high,
            _marker(row.judge_p_vs_base, alpha),
        )  # fmt: skip
        lines.append(f"{_tex_escape(str(row.model))} & {em} & {judge} \\\\")
    caption = _tex_escape(_note(alpha, correction)).replace("±", "$\\pm$")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}",
              "\\label{tab:table1}", "\\end{table}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_table1(
    score_files: list[Path],
    model_order: list[str],
    out_csv: Path,
    out_md: Path,
    out_per_dataset: Path,
    significance_csv: Path | None = None,
    alpha: float = 0.05,
    out_tex: Path | None = None,
) -> None:
    """Write Table 1 (CSV, Markdown, LaTeX) and the per-dataset long table from score JSONs."""
    scores = load_scores(score_files)
    significance = pd.read_csv(significance_csv) if significance_csv is not None else None
    correction = (
        str(significance["correction"].iloc[0])
        if significance is not None and len(significance)
        else "holm"
    )
    table = table1_frame(scores, model_order, significance)
    for path in (out_csv, out_md, out_per_dataset, out_tex):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    Path(out_md).write_text(table1_markdown(table, alpha, correction), encoding="utf-8")
    if out_tex is not None:
        Path(out_tex).write_text(table1_latex(table, alpha, correction), encoding="utf-8")
    per_dataset_frame(scores, model_order).to_csv(out_per_dataset, index=False)
    log.info("table1: %d models -> %s, %s, %s", len(table), out_csv, out_md, out_per_dataset)
