"""Rule token_lengths: token-length distribution of one mixture under the base tokenizer."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.stages.train import token_length_report


def main(smk) -> None:
    setup_logging(smk.log[0])
    token_length_report(
        model_dir=Path(smk.input.model),
        train_path=Path(smk.input.train),
        validation_path=Path(smk.input.validation),
        max_length=int(smk.params.max_length),
        out_path=Path(smk.output.report),
        model_manifests=[Path(smk.input.model_manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
    exit_without_teardown()
