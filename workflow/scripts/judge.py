"""Rule judge: LLM-as-a-judge verdicts on one model's open-question predictions."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.settings import EndpointSettings, JudgeCandidateSettings
from medinjection.stages.judge import judge_with_selection


def main(smk) -> None:
    setup_logging(smk.log[0])
    model = getattr(smk.input, "model", None)  # absent, a path, or a (possibly empty) list
    if model is not None and not isinstance(model, str):
        model = next(iter(model), None)
    selection = getattr(smk.input, "selection", None)  # present when judge.select is auto
    judge_with_selection(
        candidates={
            name: JudgeCandidateSettings.from_dict(spec, f"judge.candidates.{name}")
            for name, spec in dict(smk.params.candidates).items()
        },
        select=smk.params.select,
        selection_file=Path(selection) if selection else None,
        model_dir=Path(model) if model else None,
        prediction_files=[Path(p) for p in smk.input.predictions],
        testset_files=[Path(p) for p in smk.input.testsets],
        out_files=[Path(p) for p in smk.output.judgments],
        cache_path=smk.params.cache_path,
        prompt_version=smk.params.prompt_version,
        prompt_file=Path(smk.input.prompt),
        input_manifests=[Path(p) for p in smk.input.manifests],
        out_manifest=Path(smk.output.manifest),
        endpoints={
            name: EndpointSettings.from_dict(spec, f"llm.endpoints.{name}")
            for name, spec in dict(smk.params.endpoints).items()
        },
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
    exit_without_teardown()
