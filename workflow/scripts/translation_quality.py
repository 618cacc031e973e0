"""Rule translation_quality: translate the parallel test file, score BLEU and chrF."""

from pathlib import Path

from medinjection.logs import setup_logging
from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings
from medinjection.stages.translation_quality import translation_quality


def main(smk) -> None:
    setup_logging(smk.log[0])
    translation_quality(
        test_file=Path(smk.params.test_file),
        scores_path=Path(smk.output.scores),
        translations_path=Path(smk.output.translations),
        endpoint=EndpointSettings.from_dict(dict(smk.params.endpoint), "llm.endpoints"),
        model=smk.params.model,
        temperature=float(smk.params.temperature),
        max_tokens=int(smk.params.max_tokens),
        mode=smk.params.mode,
        replay_file=smk.params.replay_file,
        cache_path=str(smk.params.cache_path),
        submit=smk.params.submit,
        batch=BatchSettings.from_dict(dict(smk.params.batch), "llm.batch"),
        price=PriceSettings.from_dict(dict(smk.params.price), f"llm.prices.{smk.params.model}"),
    )


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
