"""Rule judge: LLM-as-a-judge verdicts on one model's open-question predictions."""

from pathlib import Path

from medinjection.evaluation.judge import judge_predictions
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    model = getattr(smk.input, "model", None)  # absent, a path, or a (possibly empty) list
    if model is not None and not isinstance(model, str):
        model = next(iter(model), None)
    judge_predictions(
        backend=smk.params.backend,
        judge_model=smk.params.judge_model,
        model_dir=Path(model) if model else None,
        prediction_files=[Path(p) for p in smk.input.predictions],
        testset_files=[Path(p) for p in smk.input.testsets],
        out_files=[Path(p) for p in smk.output.judgments],
        endpoint=dict(smk.params.endpoint) if smk.params.endpoint else None,
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=smk.params.cache_path,
        max_tokens=int(smk.params.max_tokens),
        prompt_version=smk.params.prompt_version,
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
