"""Rule score: per-test-set metrics, Table 1 aggregates and item-level scores of one model."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.stages.score import (
    BertScoreSettings,
    BootstrapSettings,
    TestSetSettings,
    score_model,
    write_score_manifest,
)


def main(smk) -> None:
    setup_logging(smk.log[0])
    score_model(
        model=smk.params.model,
        prediction_files=[Path(p) for p in smk.input.predictions],
        judge_files=[Path(p) for p in smk.input.judgments],
        test_sets={
            name: TestSetSettings.from_dict(spec, f"evaluation.test_sets.{name}")
            for name, spec in smk.params.test_sets.items()
        },
        bertscore=BertScoreSettings.from_dict(smk.params.bertscore, "evaluation.bertscore"),
        bootstrap=BootstrapSettings.from_dict(smk.params.bootstrap, "evaluation.bootstrap"),
        out_path=Path(smk.output.scores),
        out_items=Path(smk.output.item_scores),
        judge_refused=smk.params.judge_refused,
        judge_prompt=Path(smk.params.judge_prompt),
        input_manifests=[Path(p) for p in smk.input.manifests],
        gpus=int(smk.resources.gpu),  # compute.score.gpus: a resource, never a param
    )
    write_score_manifest(
        Path(smk.output.manifest), [Path(smk.output.scores), Path(smk.output.item_scores)]
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
    exit_without_teardown()
