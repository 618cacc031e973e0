"""Rule stage_annotations: physician annotations -> resources/metaeval/annotations.jsonl."""

from pathlib import Path

from medinjection.annotations import stage_annotations
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    stage_annotations(dict(smk.params.location), smk.params.candidate_field, Path(smk.output[0]))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
