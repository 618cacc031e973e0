"""Rule normalize_source: raw QA source -> validated records, quarantine and stats."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import DatasetSettings
from medinjection.stages.sources import normalize_source


def main(smk) -> None:
    setup_logging(smk.log[0])
    normalize_source(
        source=smk.params.source,
        adapter=smk.params.adapter,
        role=smk.params.role,
        raw_dir=Path(smk.input.raw),
        records_path=Path(smk.output.records),
        quarantine_path=Path(smk.output.quarantine),
        stats_path=Path(smk.output.stats),
        dataset=DatasetSettings.from_dict(smk.params.dataset, "dataset"),
        # beside the log, not an output: the copy the rate error names survives the failed job
        kept_quarantine_path=Path(smk.log[0]).with_suffix(".quarantine.jsonl"),
        manifest_path=Path(smk.input.manifest),
        out_manifest=Path(smk.output.manifest),
        rule=smk.rule,
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
