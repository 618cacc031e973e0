"""Rule test_sets: extract each configured test set from the dataset's test splits."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import TestSetSettings
from medinjection.stages.dataset import extract_test_sets


def main(smk) -> None:
    setup_logging(smk.log[0])
    extract_test_sets(
        test_files=[Path(p) for p in smk.input.tests],
        test_sets={
            name: TestSetSettings.from_dict(spec, f"evaluation.test_sets.{name}")
            for name, spec in dict(smk.params.test_sets).items()
        },
        out_dir=Path(list(smk.output.testsets)[0]).parent,
        input_manifests=[Path(smk.input.manifest)],
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
