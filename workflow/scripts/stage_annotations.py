"""Rule stage_annotations: physician annotations -> resources/metaeval/annotations.jsonl."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.judge import MetaevalSettings, stage_annotations


def main(smk) -> None:
    setup_logging(smk.log[0])
    metaeval = MetaevalSettings.from_dict(smk.params.metaeval, "metaeval")
    stage_annotations(metaeval, Path(smk.output[0]))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
