"""Rule position_bias: EM per option order, micro EM and consistency of one model."""

from pathlib import Path

from medinjection.evaluation.position_bias import score_position_bias
from medinjection.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    score_position_bias(
        model=smk.params.model,
        prediction_files=[Path(p) for p in smk.input.predictions],
        permuted_files=[Path(p) for p in smk.input.permuted],
        test_sets=dict(smk.params.test_sets),
        permutations=int(smk.params.position_bias["permutations"]),
        seed=int(smk.params.position_bias["seed"]),
        out_json=Path(smk.output.scores),
        out_items=Path(smk.output.per_item),
        input_manifests=[Path(smk.input.manifest)],
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
