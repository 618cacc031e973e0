"""Rule render_train_config: write the training hyper-parameters of one mixture as JSON."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.train import render_train_config  # no torch import


def main(smk) -> None:
    setup_logging(smk.log[0])
    render_train_config(
        hparams=smk.params.hparams, mixture=smk.params.mixture, path=Path(smk.output.config)
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
