"""Rule metaeval: correlation of every candidate judge and metric with physician labels; the
judge selection."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.settings import (
    BertScoreSettings,
    BootstrapSettings,
    EndpointSettings,
    JudgeCandidateSettings,
)
from medinjection.stages.judge import run_metaeval


def main(smk) -> None:
    setup_logging(smk.log[0])
    model = getattr(smk.input, "model", None)  # absent, a path, or a (possibly empty) list
    if model is not None and not isinstance(model, str):
        model = next(iter(model), None)
    run_metaeval(
        annotations=Path(smk.input.annotations),
        candidate_field=smk.params.candidate_field,
        judges={
            name: JudgeCandidateSettings.from_dict(spec, f"judge.candidates.{name}")
            for name, spec in dict(smk.params.candidates).items()
        },
        select=smk.params.select,
        select_by=smk.params.select_by,
        model_dir=Path(model) if model else None,
        bertscore=BertScoreSettings.from_dict(smk.params.bertscore, "evaluation.bertscore"),
        bootstrap=BootstrapSettings.from_dict(smk.params.bootstrap, "evaluation.bootstrap"),
        outputs={
            name: Path(getattr(smk.output, name))
            for name in ("correlations", "verbosity", "regression", "scores", "selection")
        },
        prompt_file=Path(smk.input.prompt),
        endpoints={
            name: EndpointSettings.from_dict(spec, f"llm.endpoints.{name}")
            for name, spec in dict(smk.params.endpoints).items()
        },
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_paths=dict(smk.params.caches),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
    exit_without_teardown()
