"""Demo corpora for synthesis: DEFT-2021 (.txt cases), DIAMED rows, MORFITT TSV (12 docs each)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from demo_fact_bank import DISEASES, Disease
from demo_io import write_jsonl
from demo_text import cap, values

MORFITT_LABELS = (
    "microbiology",
    "etiology",
    "virology",
    "physiology",
    "immunology",
    "parasitology",
    "genetics",
    "chemistry",
    "veterinary",
    "surgery",
    "pharmacology",
    "psychology",
)


def deft_case(disease: Disease, rng: random.Random) -> str:
    """A DEFT-style French clinical case (several sentences, accented text)."""
    _, fr = values(disease, rng)
    return (
        f"{fr['Who']} âgé{fr['e']} de {fr['age']} ans, aux antécédents "
        f"{rng.choice(['d’hypertension artérielle', 'de tabagisme actif', 'sans particularité'])}"
        f", est admis{fr['e']} pour le motif suivant : {fr['sign']}. L’examen clinique retrouve "
        f"une température à {rng.choice(['37,2', '38,4', '39,1'])} °C et une pression artérielle "
        f"à {rng.randint(105, 165)}/{rng.randint(60, 95)} mmHg. Le bilan comprend : {fr['test']}, "
        f"qui confirme le diagnostic {fr['de']}. Un traitement est instauré : {fr['treat']}. "
        f"L’évolution est favorable en {rng.randint(3, 15)} jours et le retour à domicile est "
        "autorisé avec un suivi en consultation."
    )


def write_deft2021(folder: Path, rng: random.Random) -> None:
    """DEFT-2021: one .txt clinical case per file."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, disease in enumerate(DISEASES[:12]):
        (folder / f"cas-clinique-{k + 1:03d}.txt").write_text(
            deft_case(disease, rng) + "\n", encoding="utf-8"
        )


def write_diamed(folder: Path, rng: random.Random) -> None:
    """DIAMED rows: identifier, title, clinical_case, topic, keywords, domains, collected_at."""
    rows = []
    for k, disease in enumerate(DISEASES[12:]):
        _, fr = values(disease, rng)
        text = (
            f"Observation. {fr['Who']} de {fr['age']} ans est adressé{fr['e']} en "
            f"consultation de {disease.specialty} pour {fr['sign']}. Le diagnostic "
            f"{fr['de']} est évoqué, puis confirmé par l’examen suivant : {fr['test']}. La "
            f"prise en charge associe {fr['treat']} et une éducation thérapeutique. À trois "
            "mois, le patient ne présente aucune récidive."
        )
        rows.append(
            {
                "identifier": f"DIAMED-{k + 1:04d}",
                "title": f"Cas clinique : {disease.fr}",
                "clinical_case": text,
                "topic": disease.specialty,
                "keywords": [disease.fr, disease.specialty],
                "domains": [disease.specialty],
                "collected_at": f"2023-0{1 + k % 9}-1{k % 10}",
            }
        )
    write_jsonl(folder / "diamed.jsonl", rows)


def write_morfitt(folder: Path, rng: random.Random) -> None:
    """MORFITT TSV train/dev/test.tsv: identifier, abstract, '|'-joined specialities."""
    folder.mkdir(parents=True, exist_ok=True)
    diseases = list(DISEASES[::2])
    for split, n in (("train", 6), ("dev", 3), ("test", 3)):
        lines = ["identifier\tabstract\tspecialities"]
        for _ in range(n):
            disease = diseases.pop(0)
            _, fr = values(disease, rng)
            abstract = (
                f" Objectif : évaluer la prise en charge {fr['de']} en pratique courante."
                f" Méthodes : étude rétrospective de {rng.randint(40, 400)} patients ; "
                f"critère principal : {fr['test']}. Résultats : {cap(fr['treat'])} a été "
                "instauré en première intention chez la majorité des patients, avec une "
                f"évolution favorable dans {rng.randint(60, 95)} % des cas. Conclusion : "
                "ces données confirment les recommandations actuelles. "
            )
            labels = "|".join(sorted(rng.sample(MORFITT_LABELS, rng.choice([1, 2]))))
            ident = hashlib.sha256(abstract.encode()).hexdigest()
            lines.append(f"{ident}\t{abstract}\t{labels}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


CORPUS_WRITERS: dict[str, Callable[[Path, random.Random], None]] = {
    "deft2021": write_deft2021,
    "diamed": write_diamed,
    "morfitt": write_morfitt,
}
