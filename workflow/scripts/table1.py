"""Rule table1: Table 1 (CSV + Markdown) and the per-dataset table from all score files."""

from pathlib import Path

from medinjection.evaluation.tables import write_table1
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    write_table1(
        score_files=[Path(p) for p in smk.input.scores],
        model_order=list(smk.params.model_order),
        out_csv=Path(smk.output.csv),
        out_md=Path(smk.output.md),
        out_per_dataset=Path(smk.output.per_dataset),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
