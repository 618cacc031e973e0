"""Native French demo sources (MediQAl, FrenchMedMCQA, FrBMedQA, mlabonne x2) in raw form."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from demo_fact_bank import DISEASES, DRUGS, Disease, Drug
from demo_io import write_json, write_jsonl, write_parquet
from demo_text import attr, cap, choose_options, combos, values

LETTERS = "ABCDE"
NATIVE_STEMS: dict[str, dict[str, str]] = {
    "mediqal": {
        "diag": "Quel est le diagnostic le plus probable ?",
        "treat": "Quel est le traitement de première intention {de} ?",
        "test": "Quel examen permet de confirmer en première intention le diagnostic {de} ?",
    },
    "mqca": {
        "diag": "Quelle affection évoquer en premier devant le tableau suivant : {sign} ?",
        "treat": "Dans le cadre {de}, quel traitement est indiqué en première intention ?",
        "test": "Dans le cadre {de}, quel examen est indiqué en première intention ?",
        "sign": "Quel signe clinique oriente vers le diagnostic {de} ?",
    },
    "fmm": {
        "class": "Quelle est la classe pharmacologique du médicament suivant : {drug} ?",
        "adverse": "Quel effet indésirable est classiquement associé au médicament suivant : "
        "{drug} ?",
        "drug": "Parmi les médicaments suivants, lequel appartient à la classe : {cls} ?",
    },
}
STATEMENTS = {
    "treat": "Le traitement de première intention repose sur : {}",
    "sign": "Le signe évocateur est : {}",
    "test": "L'examen de première intention est : {}",
    "class": "Il appartient à la classe suivante : {}",
    "adverse": "Un effet indésirable classique est : {}",
}


def case_text(disease: Disease, rng: random.Random) -> str:
    """A short French clinical vignette around a disease's key sign."""
    _, fr = values(disease, rng)
    pronoun = "Elle" if fr["e"] else "Il"
    return (
        f"{fr['Who']} de {fr['age']} ans consulte aux urgences. {pronoun} rapporte le motif "
        f"suivant : {fr['sign']}. La fréquence cardiaque est à {rng.randint(62, 118)}/min et "
        f"la température à {rng.choice(['36,8', '37,4', '38,2', '38,9', '39,5'])} °C."
    )


def mc(
    style: str, qtype: str, entity: Disease | Drug, rng: random.Random, n: int
) -> tuple[str, list[str], int]:
    """French question, option texts and correct index of one single-answer item."""
    _, fr = values(entity, rng)
    options, answer = choose_options(rng, entity, qtype, n)
    return NATIVE_STEMS[style][qtype].format(**fr), [o[1] for o in options], answer


def multi(entity: Disease | Drug, rng: random.Random, n: int = 5) -> tuple[list[str], list[int]]:
    """Statement options about an entity, 2-3 true ones, and the indexes of the true ones."""
    kinds = ["treat", "sign", "test"] if isinstance(entity, Disease) else ["class", "adverse"]
    pool = DISEASES if isinstance(entity, Disease) else DRUGS
    n_true = rng.choice([2, len(kinds)]) if len(kinds) > 2 else 2
    true = [STATEMENTS[k].format(attr(entity, k)[1]) for k in rng.sample(kinds, n_true)]
    others = [e for e in pool if e is not entity]
    false = [
        STATEMENTS[k].format(attr(e, k)[1])
        for e, k in zip(
            rng.sample(others, n - n_true), rng.choices(kinds, k=n - n_true), strict=True
        )
    ]
    options = true + false
    rng.shuffle(options)
    return options, sorted(options.index(t) for t in true)


def multi_question(entity: Disease | Drug) -> str:
    """French stem of a multi-answer item."""
    if isinstance(entity, Disease):
        return (
            f"Concernant la prise en charge {entity.de_fr}, quelle(s) est (sont) la (les) "
            "proposition(s) exacte(s) ?"
        )
    return (
        f"Parmi les propositions suivantes concernant le médicament {entity.fr}, laquelle "
        "(lesquelles) est (sont) exacte(s) ?"
    )


MEDIQAL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("clinical_case", pa.string()),
        ("question", pa.string()),
        *((f"answer_{x}", pa.string()) for x in "abcde"),
        ("correct_answers", pa.string()),
        ("task", pa.string()),
        ("medical_subject", pa.string()),
        ("question_type", pa.string()),
    ]
)
OEQ_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("clinical_case", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("task", pa.string()),
        ("medical_subject", pa.string()),
        ("question_type", pa.string()),
        ("cc_question_number", pa.int64()),
    ]
)


def _mediqal_row(
    uid: str,
    config: str,
    entity: Disease,
    case: str | None,
    question: str,
    options: list[str],
    correct: list[int],
) -> dict[str, Any]:
    row = {"id": uid, "clinical_case": case, "question": question}
    row |= {f"answer_{x}": options[i] for i, x in enumerate("abcde")}
    return row | {
        "correct_answers": ",".join(LETTERS[i] for i in correct),
        "task": config,
        "medical_subject": entity.specialty,
        "question_type": "clinical_case" if case else "isolated",
    }


def write_mediqal(folder: Path, rng: random.Random) -> None:
    """MediQAl: {mcqu,mcqm,oeq}/{split}-00000-of-00001.parquet with answer_a..e, 'C,D'."""
    queue = combos(["diag", "treat", "test"], rng)
    uid = iter(f"mq-{k:05d}" for k in range(1000))
    for split, n in (("train", 12), ("validation", 3), ("test", 6)):
        rows = []
        for _ in range(n):
            qtype, disease = queue.pop(0)
            case = case_text(disease, rng) if qtype == "diag" else None
            question, options, answer = mc("mediqal", qtype, disease, rng, 5)
            rows.append(_mediqal_row(next(uid), "mcqu", disease, case, question, options, [answer]))
        if split == "train":
            rows[4]["correct_answers"] = "F"  # bad: no option F
        write_parquet(folder / "mcqu" / f"{split}-00000-of-00001.parquet", rows, MEDIQAL_SCHEMA)
    diseases = list(DISEASES)
    rng.shuffle(diseases)
    for split, n in (("train", 10), ("validation", 2), ("test", 5)):
        rows = []
        for _ in range(n):
            disease = diseases.pop(0)
            options, correct = multi(disease, rng)
            case = case_text(disease, rng) if rng.random() < 0.3 else None
            rows.append(
                _mediqal_row(
                    next(uid), "mcqm", disease, case, multi_question(disease), options, correct
                )
            )
        if split == "train":
            rows.append(dict(rows[0]))  # bad: duplicate id
        write_parquet(folder / "mcqm" / f"{split}-00000-of-00001.parquet", rows, MEDIQAL_SCHEMA)
    rows = []
    for k, disease in enumerate(DISEASES[::4]):
        qtype = "treat" if k % 2 == 0 else "test"
        question = {
            "treat": "Quel traitement proposez-vous en première intention ?",
            "test": "Quel examen demandez-vous en première intention ?",
        }[qtype]
        rows.append(
            {
                "id": next(uid),
                "clinical_case": case_text(disease, rng),
                "question": question,
                "answer": cap(attr(disease, qtype)[1]) + ".",
                "task": "oeq",
                "medical_subject": disease.specialty,
                "question_type": "clinical_case",
                "cc_question_number": 1,
            }
        )
    write_parquet(folder / "oeq" / "test-00000-of-00001.parquet", rows, OEQ_SCHEMA)


def _fmm_item(
    rng: random.Random, kind: str, entity: Disease | Drug, uid: str, with_type: bool
) -> dict[str, Any]:
    if kind == "multi":
        question = multi_question(entity)
        options, correct = multi(entity, rng)
    else:
        question, options, answer = mc("fmm", kind, entity, rng, 5)
        correct = [answer]
    item = {
        "id": uid,
        "question": question,
        "answers": {x: options[i] for i, x in enumerate("abcde")},
        "correct_answers": ["abcde"[i] for i in correct],
        "subject_name": "pharmacie",
    }
    if with_type:
        item["type"] = "simple" if len(correct) == 1 else "multiple"
    return item | {"nbr_correct_answers": len(correct)}


def write_frenchmedmcqa(folder: Path, rng: random.Random) -> None:
    """FrenchMedMCQA GitHub JSON arrays train/dev/test.json; answers a..e; lower-case letters."""
    singles = combos(["class", "adverse", "drug"], rng)
    multis = [("multi", e) for e in (*DRUGS, *DISEASES[1::2])]
    rng.shuffle(multis)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, n_single, n_multi in (("train", 13, 11), ("dev", 3, 2), ("test", 4, 4)):
        chosen = [singles.pop(0) for _ in range(n_single)] + [multis.pop(0) for _ in range(n_multi)]
        rng.shuffle(chosen)
        splits[split] = [
            _fmm_item(rng, kind, entity, f"{rng.getrandbits(256):064x}", split != "test")
            for kind, entity in chosen
        ]
    splits["train"][7]["answers"] = {}  # bad: empty options
    leak = dict(splits["test"][0], id=f"{rng.getrandbits(256):064x}")  # planted exact test leak
    splits["train"].append(
        leak | {"type": "simple" if leak["nbr_correct_answers"] == 1 else "multiple"}
    )
    for split, items in splits.items():
        write_json(folder / f"{split}.json", items)


CLOZE = {
    "treat": "Le traitement de référence de cette affection est @placeholder.",
    "test": "Le diagnostic repose en première intention sur @placeholder.",
    "sign": "La maladie se manifeste typiquement par @placeholder.",
    "diag": "@placeholder relève de la spécialité suivante : {specialty}.",
}


def _passage(disease: Disease) -> str:
    return (
        f"{cap(disease.fr)} : affection relevant de la spécialité suivante : "
        f"{disease.specialty}. Elle se manifeste typiquement par {disease.sign_fr}. Le "
        f"diagnostic repose en première intention sur {disease.test_fr}, et le traitement "
        f"de référence est {disease.treat_fr}."
    )


def write_frbmedqa(folder: Path, rng: random.Random) -> None:
    """FrBMedQA (unverified form): {train,dev,test}.jsonl cloze items with candidates."""
    queue = combos(list(CLOZE), rng)
    for split, n in (("train", 22), ("dev", 4), ("test", 6)):
        rows = []
        for k in range(n):
            qtype, disease = queue.pop(0)
            options, answer = choose_options(rng, disease, qtype, 4)
            candidates = [
                fr if qtype == "diag" or not fr[1:2].islower() else fr[:1].lower() + fr[1:]
                for _, fr in options
            ]
            rows.append(
                {
                    "id": f"frb-{split}-{k:04d}",
                    "passage": _passage(disease),
                    "question": CLOZE[qtype].format(specialty=disease.specialty),
                    "candidates": candidates,
                    "answer": candidates[answer],
                }
            )
        if split == "train":
            rows[9]["answer"] = "une réponse absente"  # bad: answer not among candidates
        write_jsonl(folder / f"{split}.jsonl", rows)


MQCA_SCHEMA = pa.schema(
    [("question", pa.string()), ("choices", pa.list_(pa.string())), ("answer", pa.string())]
)
CASES_SCHEMA = pa.schema(
    [("clinical_case", pa.string()), ("question", pa.string()), ("answer", pa.string())]
)


def write_medical_mqca_fr(folder: Path, rng: random.Random) -> None:
    """mlabonne/medical-mqca-fr (unverified fields): data/{train,eval}-*.parquet."""
    queue = combos(list(NATIVE_STEMS["mqca"]), rng)
    for split, n in (("train", 26), ("eval", 4)):
        rows: list[dict[str, Any]] = []
        for k in range(n):
            qtype, disease = queue.pop(0)
            if k % 5 == 4:
                options, correct = multi(disease, rng, 4)
                question = f"Quelles propositions sont exactes concernant {disease.fr} ?"
            else:
                question, options, answer = mc("mqca", qtype, disease, rng, 4)
                correct = [answer]
            rows.append(
                {
                    "question": question,
                    "choices": options,
                    "answer": ",".join("ABCD"[i] for i in correct),
                }
            )
        if split == "train":
            rows[13]["choices"] = None  # bad: no choices
        write_parquet(folder / "data" / f"{split}-00000-of-00001.parquet", rows, MQCA_SCHEMA)


def write_medical_cases_fr(folder: Path, rng: random.Random) -> None:
    """mlabonne/medical-cases-fr (unverified fields): open questions on clinical cases."""
    queue = combos(["diag", "treat", "test"], rng)
    prompts = {
        "diag": ("Quel est votre diagnostic ?", "Diagnostic le plus probable : {}."),
        "treat": (
            "Quel traitement proposez-vous en première intention ?",
            "Traitement de première intention : {}.",
        ),
        "test": (
            "Quel examen demandez-vous en première intention ?",
            "Examen de première intention : {}.",
        ),
    }
    for split, n in (("train", 20), ("eval", 4)):
        rows = []
        for _ in range(n):
            qtype, disease = queue.pop(0)
            question, answer = prompts[qtype]
            rows.append(
                {
                    "clinical_case": case_text(disease, rng),
                    "question": question,
                    "answer": answer.format(attr(disease, qtype)[1]),
                }
            )
        if split == "train":
            rows[2]["answer"] = "  "  # bad: blank answer
        write_parquet(folder / "data" / f"{split}-00000-of-00001.parquet", rows, CASES_SCHEMA)


NATIVE_WRITERS: dict[str, Callable[[Path, random.Random], None]] = {
    "mediqal": write_mediqal,
    "frenchmedmcqa": write_frenchmedmcqa,
    "frbmedqa": write_frbmedqa,
    "medical_mqca_fr": write_medical_mqca_fr,
    "medical_cases_fr": write_medical_cases_fr,
}
