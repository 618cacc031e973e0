"""Rule predict: one model (optionally with its adapter) on every test set."""

from pathlib import Path

from medinjection.interpreter import needs_rerun, rerun_script
from medinjection.logs import setup_logging
from medinjection.modeling.predict import PositionBias, predict


def main(smk) -> None:
    setup_logging(smk.log[0])
    adapter = getattr(smk.input, "adapter", None)
    predict(
        backend=smk.params.backend,
        model_dir=Path(smk.input.model),
        adapter_dir=Path(adapter) if adapter else None,
        testset_files=smk.input.testsets,
        out_files=smk.output.predictions,
        batch_size=int(smk.params.batch_size),
        max_new_tokens_oeq=int(smk.params.max_new_tokens_oeq),
        prompt_version=smk.params.prompt_version,
        permuted_files=smk.output.permuted,
        position_bias=PositionBias(
            permutations=int(smk.params.position_bias["permutations"]),
            seed=int(smk.params.position_bias["seed"]),
        ),
        max_model_len=smk.params.max_model_len,
        protocol=smk.params.protocol,
        input_manifests=[Path(smk.input.manifests)],
        out_manifest=Path(smk.output.manifest),
    )


# vLLM starts its workers with `spawn`, which imports this file again in each child: only the
# process Snakemake started may run the job. With prediction.python (the vLLM venv) that process
# runs this job's script file again under that interpreter.
if __name__ == "__main__" and "snakemake" in globals():
    python = getattr(snakemake.params, "python", None)  # noqa: F821
    if needs_rerun(python):
        rerun_script(python, __real_file__, "prediction.python")  # noqa: F821
    else:
        main(snakemake)  # noqa: F821
