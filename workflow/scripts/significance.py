"""Rule significance: paired bootstrap or permutation tests between models on item-level scores."""

from pathlib import Path

from medinjection.evaluation.significance import DEFAULT_METHOD, write_significance
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    write_significance(
        item_files=[Path(p) for p in smk.input.item_scores],
        model_order=list(smk.params.model_order),
        metrics=list(smk.params.significance["metrics"]),
        correction=smk.params.significance["correction"],
        alpha=float(smk.params.significance["alpha"]),
        bootstrap=dict(smk.params.bootstrap),
        out_csv=Path(smk.output.csv),
        method=smk.params.significance.get("method", DEFAULT_METHOD),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
