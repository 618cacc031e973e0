"""Rule stage_source: copy or download a source's raw public files and hash them."""

import os
from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.sources.pins import is_offline
from medinjection.sources.stage import stage_source


def main(smk) -> None:
    setup_logging(smk.log[0])
    stage_source(
        source=smk.params.source,
        location=dict(smk.params.location),
        raw_dir=Path(smk.output.raw),
        manifest_path=Path(smk.output.manifest),
        # data.offline, or HF_HUB_OFFLINE in the job's environment (not a param: where the files
        # come from is not what they are, so it reruns nothing)
        offline=is_offline({"data": {"offline": smk.params.offline}}, os.environ),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
