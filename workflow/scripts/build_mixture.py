"""Rule build_mixture: draw one training mixture and render it as chat JSONL."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import MixturesSettings
from medinjection.stages.mixtures import build_mixture


def main(smk) -> None:
    setup_logging(smk.log[0])
    build_mixture(
        name=smk.params.name,
        mixtures=MixturesSettings.from_dict(smk.params.mixtures, "mixtures"),
        prompt_version=smk.params.prompt_version,
        train_files=[Path(p) for p in smk.input.train],
        validation_files=[Path(p) for p in smk.input.validation],
        out_train=Path(smk.output.train),
        out_validation=Path(smk.output.validation),
        out_manifest=Path(smk.output.manifest),
        input_manifests=[Path(smk.input.manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
