"""Rule translation_quality_report: BLEU/chrF (and COMET) beside the paper's figures."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.translation_quality import quality_report


def main(smk) -> None:
    setup_logging(smk.log[0])
    comet = list(smk.input.comet)
    quality_report(
        scores_path=Path(smk.input.scores),
        comet_path=Path(comet[0]) if comet else None,
        out_path=Path(smk.output.report),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
