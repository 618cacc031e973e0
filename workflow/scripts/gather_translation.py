"""Rule gather_translation: concatenate the translated shards of one source (after checking
the source's loss rate over all its shards)."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.translate import gather_shards


def main(smk) -> None:
    setup_logging(smk.log[0])
    gather_shards(
        shard_paths=[Path(p) for p in smk.input.shards],
        out_path=Path(smk.output.records),
        usage_paths=[Path(p) for p in smk.input.usage],
        max_quarantine_rate=float(smk.params.max_quarantine_rate),
        out_manifest=Path(smk.output.manifest),
        input_manifests=[Path(p) for p in smk.input.manifests],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
