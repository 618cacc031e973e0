"""Rule translate_shard: translate one shard of an English source into French."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings
from medinjection.stages.translate import translate_shard


def main(smk) -> None:
    setup_logging(smk.log[0])
    translate_shard(
        records_path=Path(smk.input.records),
        out_path=Path(smk.output.records),
        usage_path=Path(smk.output.usage),
        shard=int(smk.params.shard),
        shards=int(smk.params.shards),
        # the endpoint of translation.endpoint or translation.by_source.<source>
        endpoint=EndpointSettings.from_dict(dict(smk.params.endpoint), "llm.endpoints"),
        model=smk.params.model,
        temperature=float(smk.params.temperature),
        max_tokens=int(smk.params.max_tokens),
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=str(smk.params.cache_path),
        submit=smk.params.submit,
        batch=BatchSettings.from_dict(dict(smk.params.batch), "llm.batch"),
        price=PriceSettings.from_dict(dict(smk.params.price), f"llm.prices.{smk.params.model}"),
        max_quarantine_rate=float(smk.params.max_quarantine_rate),
        # beside the log, not an output: it survives the failed job the rate error stops
        quarantine_path=Path(smk.log[0]).with_suffix(".quarantine.jsonl"),
        input_manifests=[Path(smk.input.manifest)],
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
