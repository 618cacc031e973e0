"""Rule synthesize: generate synthetic French QA from one corpus of documents."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings, SynthesisSettings
from medinjection.stages.synthesize import synthesize


def main(smk) -> None:
    setup_logging(smk.log[0])
    synthesis = SynthesisSettings.from_dict(smk.params.synthesis, "synthesis")
    synthesize(
        documents_path=Path(smk.input.documents),
        out_path=Path(smk.output.records),
        usage_path=Path(smk.output.usage),
        source=smk.params.source,
        synthesis=synthesis,
        endpoint=EndpointSettings.from_dict(
            dict(smk.params.endpoint), f"llm.endpoints.{synthesis.endpoint}"
        ),
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=str(smk.params.cache_path),
        seed=int(smk.params.seed),
        batch=BatchSettings.from_dict(dict(smk.params.batch), "llm.batch"),
        price=PriceSettings.from_dict(dict(smk.params.price), f"llm.prices.{synthesis.model}"),
        # beside the log, not an output: it survives the failed job the rate error stops
        quarantine_path=Path(smk.log[0]).with_suffix(".quarantine.jsonl"),
        out_manifest=Path(smk.output.manifest),
        input_manifests=[Path(smk.input.manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
