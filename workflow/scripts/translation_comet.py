"""Rule translation_comet: COMET of the translations (runs in envs/comet.yaml)."""

from pathlib import Path

from medinjection.llm.comet import comet_score
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    comet_score(
        translations_path=Path(smk.input.translations),
        model_path=Path(smk.params.model_path),
        out_path=Path(smk.output.comet),
        batch_size=int(smk.params.batch_size),
        gpus=int(smk.resources.gpu),  # compute.comet.gpus: a resource, never a param
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
