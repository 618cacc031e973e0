"""Rule build_mixture: draw one training mixture and render it as chat JSONL."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.mixtures import build_mixture


def main(smk) -> None:
    setup_logging(smk.log[0])
    build_mixture(
        name=smk.params.name,
        shares={origin: float(w) for origin, w in dict(smk.params.shares).items()},
        train_files=[Path(p) for p in smk.input.train],
        validation_files=[Path(p) for p in smk.input.validation],
        size=int(smk.params.size),
        validation_size=int(smk.params.validation_size),
        seed=int(smk.params.seed),
        tasks=list(smk.params.tasks),
        prompt_version=smk.params.prompt_version,
        out_train=Path(smk.output.train),
        out_validation=Path(smk.output.validation),
        out_manifest=Path(smk.output.manifest),
        validation_origins=list(smk.params.validation_origins) or None,
        input_manifests=[Path(smk.input.manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
