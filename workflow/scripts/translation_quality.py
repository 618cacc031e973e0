"""Rule translation_quality: translate the parallel test file, score BLEU and chrF."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.stages.translation_quality import translation_quality


def main(smk) -> None:
    setup_logging(smk.log[0])
    translation_quality(
        test_file=Path(smk.params.test_file),
        scores_path=Path(smk.output.scores),
        translations_path=Path(smk.output.translations),
        endpoint=dict(smk.params.endpoint),
        model=smk.params.model,
        temperature=float(smk.params.temperature),
        max_tokens=int(smk.params.max_tokens),
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=str(smk.params.cache_path),
        submit=smk.params.submit,
        batch=dict(smk.params.batch),
        price=dict(smk.params.price),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
