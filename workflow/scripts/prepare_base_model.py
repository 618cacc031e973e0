"""Rule prepare_base_model: build the tiny model, download a Hub snapshot, or link a local model."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.modeling.base import prepare_base_model


def main(smk) -> None:
    setup_logging(smk.log[0])
    prepare_base_model(
        kind=smk.params.kind,
        out_dir=Path(smk.output.model),
        tiny=smk.params.tiny,
        corpus_files=smk.input.corpus,
        hub=smk.params.hub,
        local_path=smk.params.local_path,
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
