"""Rule prepare_base_model: build the tiny model, download a Hub snapshot, or link a local model."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.stages.train import (
    HubModelSettings,
    TinyModelSettings,
    prepare_base_model,
)


def main(smk) -> None:
    setup_logging(smk.log[0])
    tiny, hub = smk.params.tiny, smk.params.hub
    prepare_base_model(
        kind=smk.params.kind,
        out_dir=Path(smk.output.model),
        corpus_files=smk.input.corpus,
        tiny=TinyModelSettings.from_dict(tiny, "base_model.tiny") if tiny else None,
        hub=HubModelSettings.from_dict(hub, "base_model.hub") if hub else None,
        local_path=smk.params.local_path,
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
    exit_without_teardown()
