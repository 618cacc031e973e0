"""Source adapters: raw public files of each source -> records (QA) or documents (corpora)."""

from __future__ import annotations

from medinjection.sources.base import Adapter, CorpusAdapter
from medinjection.sources.corpora import load_deft2021, load_diamed, load_morfitt
from medinjection.sources.frbmedqa import load_frbmedqa
from medinjection.sources.frenchmedmcqa import load_frenchmedmcqa
from medinjection.sources.mediqal import load_mediqal
from medinjection.sources.medmcqa import load_medmcqa, load_medmcqa_json
from medinjection.sources.medqa import load_medqa
from medinjection.sources.medxpertqa import load_medxpertqa
from medinjection.sources.mlabonne import load_medical_cases_fr, load_medical_mqca_fr
from medinjection.sources.mmlu import load_mmlu, load_mmlu_pro
from medinjection.sources.pubmedqa import (
    load_pubmedqa,
    load_pubmedqa_artificial,
    load_pubmedqa_oeq,
)
from medinjection.sources.released import (
    load_released_native,
    load_released_synthetic,
    load_released_translated,
)
from medinjection.sources.s_editions import load_s_editions

ADAPTERS: dict[str, Adapter] = {
    "mediqal": load_mediqal,
    "frenchmedmcqa": load_frenchmedmcqa,
    "frbmedqa": load_frbmedqa,
    "medical_cases_fr": load_medical_cases_fr,
    "medical_mqca_fr": load_medical_mqca_fr,
    "medqa": load_medqa,
    "pubmedqa": load_pubmedqa,
    "pubmedqa_oeq": load_pubmedqa_oeq,
    "pubmedqa_artificial": load_pubmedqa_artificial,
    "medmcqa": load_medmcqa,
    "medmcqa_json": load_medmcqa_json,
    "medxpertqa": load_medxpertqa,
    "mmlu": load_mmlu,
    "mmlu_pro": load_mmlu_pro,
    "s_editions": load_s_editions,
    "released_native": load_released_native,
    "released_translated": load_released_translated,
    "released_synthetic": load_released_synthetic,
}

CORPUS_ADAPTERS: dict[str, CorpusAdapter] = {
    "deft2021": load_deft2021,
    "diamed": load_diamed,
    "morfitt": load_morfitt,
}


def get_adapter(name: str) -> Adapter:
    """QA adapter by name; unknown names list the valid ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown QA adapter {name!r}; valid: {sorted(ADAPTERS)}") from None


def get_corpus_adapter(name: str) -> CorpusAdapter:
    """Corpus adapter by name; unknown names list the valid ones."""
    try:
        return CORPUS_ADAPTERS[name]
    except KeyError:
        raise KeyError(
            f"unknown corpus adapter {name!r}; valid: {sorted(CORPUS_ADAPTERS)}"
        ) from None
