"""Rule stage_source: copy or download a source's raw public files and hash them."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import LocationSettings
from medinjection.stages.sources import offline_now, stage_source


def main(smk) -> None:
    setup_logging(smk.log[0])
    stage_source(
        source=smk.params.source,
        location=LocationSettings.from_dict(smk.params.location, "location"),
        raw_dir=Path(smk.output.raw),
        manifest_path=Path(smk.output.manifest),
        offline=offline_now(bool(smk.params.offline)),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
