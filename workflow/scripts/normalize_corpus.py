"""Rule normalize_corpus: raw French corpus -> documents for synthesis."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.sources import normalize_corpus


def main(smk) -> None:
    setup_logging(smk.log[0])
    normalize_corpus(
        source=smk.params.source,
        adapter=smk.params.adapter,
        raw_dir=Path(smk.input.raw),
        documents_path=Path(smk.output.documents),
        manifest_path=Path(smk.input.manifest),
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
