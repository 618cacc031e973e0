"""Rule position_bias_table: one row per model from the position-bias score files."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.position_bias import position_bias_table


def main(smk) -> None:
    setup_logging(smk.log[0])
    position_bias_table(
        score_files=[Path(p) for p in smk.input.scores], out_csv=Path(smk.output.csv)
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
