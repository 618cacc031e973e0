"""Rule plot_per_dataset: heat map of constrained EM / judge score per model × test set."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.report import plot_per_dataset


def main(smk) -> None:
    setup_logging(smk.log[0])
    plot_per_dataset(
        per_dataset_csv=Path(smk.input.csv),
        model_order=list(smk.params.model_order),
        out_png=Path(smk.output.png),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
