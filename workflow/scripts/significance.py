"""Rule significance: paired bootstrap or permutation tests between models on item-level scores."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.report import (
    BootstrapSettings,
    SignificanceSettings,
    write_significance,
)


def main(smk) -> None:
    setup_logging(smk.log[0])
    write_significance(
        item_files=[Path(p) for p in smk.input.item_scores],
        model_order=list(smk.params.model_order),
        significance=SignificanceSettings.from_dict(
            smk.params.significance, "evaluation.significance"
        ),
        bootstrap=BootstrapSettings.from_dict(smk.params.bootstrap, "evaluation.bootstrap"),
        out_csv=Path(smk.output.csv),
        input_manifests=[Path(p) for p in smk.input.manifests],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
