"""Rule predict: one model (optionally with its adapter) on every test set."""

from pathlib import Path

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.stages.predict import (
    PositionBiasSettings,
    PredictionSettings,
    predict,
    rerun_under,
)


def main(smk) -> None:
    setup_logging(smk.log[0])
    adapter = getattr(smk.input, "adapter", None)
    predict(
        prediction=PredictionSettings.from_dict(smk.params.prediction, "prediction"),
        model_dir=Path(smk.input.model),
        adapter_dir=Path(adapter) if adapter else None,
        testset_files=smk.input.testsets,
        out_files=smk.output.predictions,
        prompt_version=smk.params.prompt_version,
        protocol=smk.params.protocol,
        permuted_files=smk.output.permuted,
        position_bias=PositionBiasSettings.from_dict(
            smk.params.position_bias, "evaluation.position_bias"
        ),
        input_manifests=[Path(smk.input.manifests)],
        model_manifests=[Path(p) for p in smk.input.model_manifests],
        out_manifest=Path(smk.output.manifest),
    )


# vLLM starts its workers with `spawn`, which imports this file again in each child: only the
# process Snakemake started may run the job. With prediction.python (the vLLM venv) that process
# runs this job's script file again under that interpreter.
if __name__ == "__main__" and "snakemake" in globals():
    python = snakemake.params.prediction.get("python")  # noqa: F821
    if not rerun_under(python, __real_file__):  # noqa: F821
        main(snakemake)  # noqa: F821
        exit_without_teardown()
