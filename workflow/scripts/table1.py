"""Rule table1: Table 1 (CSV, Markdown, LaTeX) and the per-dataset tables from all score files."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.report import write_tables


def main(smk) -> None:
    setup_logging(smk.log[0])
    write_tables(
        score_files=[Path(p) for p in smk.input.scores],
        significance_csv=Path(smk.input.significance),
        model_order=list(smk.params.model_order),
        alpha=float(smk.params.alpha),
        outputs={
            "table1_csv": Path(smk.output.csv),
            "table1_md": Path(smk.output.md),
            "table1_tex": Path(smk.output.tex),
            "per_dataset_csv": Path(smk.output.per_dataset),
            "per_dataset_md": Path(smk.output.per_dataset_md),
        },
        input_manifests=[Path(p) for p in smk.input.manifests],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
