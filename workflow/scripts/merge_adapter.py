"""Rule merge_adapter: merge a LoRA/DoRA adapter into the base model (for vLLM)."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.train import merge_adapter


def main(smk) -> None:
    setup_logging(smk.log[0])
    merge_adapter(
        base_dir=Path(smk.input.model),
        adapter_dir=Path(smk.input.adapter),
        out_dir=Path(smk.output.merged),
        input_manifests=[Path(p) for p in smk.input.manifests],
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
