"""Rule plot_table1: bar chart of Table 1 with 95% interval error bars."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.report import plot_table1


def main(smk) -> None:
    setup_logging(smk.log[0])
    plot_table1(table_csv=Path(smk.input.csv), out_png=Path(smk.output.png))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
