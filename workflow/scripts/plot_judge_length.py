"""Rule plot_judge_length: the selected judge's verdicts against answer length (verbosity)."""

from pathlib import Path

from medinjection.evaluation.plots import plot_judge_length
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    plot_judge_length(
        item_scores_csv=Path(smk.input.scores),
        selection_json=Path(smk.input.selection),
        out_png=Path(smk.output.png),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
