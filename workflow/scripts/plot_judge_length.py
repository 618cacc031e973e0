"""Rule plot_judge_length: judge verdicts against answer length, annotated pairs and models."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.report import plot_judge_length


def main(smk) -> None:
    setup_logging(smk.log[0])
    plot_judge_length(
        item_scores_csv=Path(smk.input.scores),
        selection_json=Path(smk.input.selection),
        model_item_files=[Path(p) for p in smk.input.model_scores],
        model_order=list(smk.params.model_order),
        out_png=Path(smk.output.png),
        input_manifests=[Path(p) for p in smk.input.manifests],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
