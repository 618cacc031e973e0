"""Rule metaeval: correlation of the judge and automatic metrics with physician labels."""

from pathlib import Path

from medinjection.evaluation.metaeval import run_metaeval
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    model = getattr(smk.input, "model", None)  # absent, a path, or a (possibly empty) list
    if model is not None and not isinstance(model, str):
        model = next(iter(model), None)
    run_metaeval(
        annotations=Path(smk.input.annotations),
        candidate_field=smk.params.candidate_field,
        judge=dict(smk.params.judge),
        model_dir=Path(model) if model else None,
        bertscore=dict(smk.params.bertscore),
        bootstrap=dict(smk.params.bootstrap),
        out_correlations=Path(smk.output.correlations),
        out_verbosity=Path(smk.output.verbosity),
        out_scores=Path(smk.output.scores),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
