"""Rule translation_comet: COMET of the translations (runs in envs/comet.yaml)."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import CometSettings
from medinjection.stages.translation_quality import comet_score


def main(smk) -> None:
    setup_logging(smk.log[0])
    comet_score(
        translations_path=Path(smk.input.translations),
        comet=CometSettings.from_dict(smk.params.comet, "translation.quality.comet"),
        out_path=Path(smk.output.comet),
        gpus=int(smk.resources.gpu),  # compute.comet.gpus: a resource, never a param
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
