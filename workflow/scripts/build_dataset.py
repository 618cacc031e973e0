"""Rule build_dataset: merge origins, dedup, decontaminate, write splits and stats."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import DatasetSettings
from medinjection.stages.dataset import build_dataset


def main(smk) -> None:
    setup_logging(smk.log[0])
    build_dataset(
        native=[Path(p) for p in smk.input.native],
        translated=[Path(p) for p in smk.input.translated],
        synthetic=[Path(p) for p in smk.input.synthetic],
        out_dir=Path(smk.output.stats).parent,
        dataset=DatasetSettings.from_dict(smk.params.dataset, "dataset"),
        source_stats=[Path(p) for p in smk.input.source_stats],
        input_manifests=[Path(p) for p in smk.input.manifests],
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
