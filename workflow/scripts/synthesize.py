"""Rule synthesize: generate synthetic French QA from one corpus of documents."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.synthesize import synthesize


def main(smk) -> None:
    setup_logging(smk.log[0])
    synthesize(
        documents_path=Path(smk.input.documents),
        out_path=Path(smk.output.records),
        usage_path=Path(smk.output.usage),
        source=smk.params.source,
        endpoint=dict(smk.params.endpoint),
        model=smk.params.model,
        temperature=float(smk.params.temperature),
        max_tokens=int(smk.params.max_tokens),
        task_types={name: int(n) for name, n in dict(smk.params.task_types).items()},
        mcq_per_document=int(smk.params.mcq_per_document),
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=str(smk.params.cache_path),
        submit=smk.params.submit,
        batch=dict(smk.params.batch),
        price=dict(smk.params.price),
        seed=int(smk.params.seed),
        max_quarantine_rate=float(smk.params.max_quarantine_rate),
        # beside the log, not an output: it survives the failed job the rate error stops
        quarantine_path=Path(smk.log[0]).with_suffix(".quarantine.jsonl"),
        out_manifest=Path(smk.output.manifest),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
