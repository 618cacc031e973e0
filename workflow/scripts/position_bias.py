"""Rule position_bias: EM per option order, micro EM and consistency of one model."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.position_bias import (
    PositionBiasSettings,
    TestSetSettings,
    score_position_bias,
)


def main(smk) -> None:
    setup_logging(smk.log[0])
    score_position_bias(
        model=smk.params.model,
        prediction_files=[Path(p) for p in smk.input.predictions],
        permuted_files=[Path(p) for p in smk.input.permuted],
        test_sets={
            name: TestSetSettings.from_dict(spec, f"evaluation.test_sets.{name}")
            for name, spec in smk.params.test_sets.items()
        },
        position_bias=PositionBiasSettings.from_dict(
            smk.params.position_bias, "evaluation.position_bias"
        ),
        out_json=Path(smk.output.scores),
        out_items=Path(smk.output.per_item),
        input_manifests=[Path(smk.input.manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
