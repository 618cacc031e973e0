"""English demo sources (MedQA, PubMedQA, MedMCQA, MedXpertQA, MMLU, MMLU-Pro) in raw form."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo_fact_bank import Disease
from demo_io import write_json, write_jsonl, write_parquet
from demo_text import Translations, cap, choose_options, combos, values

STEMS: dict[str, dict[str, tuple[str, str]]] = {
    "medqa": {
        "diag": (
            "A {age}-year-old {who} presents with {sign}. Which of the following is the most "
            "likely diagnosis?",
            "{Who} de {age} ans consulte pour le motif suivant : {sign}. Quel est le "
            "diagnostic le plus probable ?",
        ),
        "treat": (
            "A {age}-year-old {who} is diagnosed with {name}. Which of the following is the "
            "most appropriate first-line treatment?",
            "{Who} de {age} ans reçoit un diagnostic {de}. Quel est le traitement de "
            "première intention le plus approprié ?",
        ),
        "test": (
            "A {age}-year-old {who} is suspected of having {name}. Which investigation "
            "should be performed first to confirm the diagnosis?",
            "Chez {who_l} de {age} ans, on suspecte le diagnostic {de}. Quel examen faut-il "
            "réaliser en premier pour confirmer le diagnostic ?",
        ),
        "sign": (
            "A {age}-year-old {who} is evaluated for suspected {name}. Which of the "
            "following findings is most characteristic of this condition?",
            "{Who} de {age} ans est évalué{e} pour une suspicion {de}. Quel signe est le "
            "plus caractéristique de cette affection ?",
        ),
        "adverse": (
            "A {age}-year-old {who} is started on {drug}. Which adverse effect is most "
            "typical of this drug?",
            "{Who} de {age} ans débute un traitement par {drug}. Quel effet indésirable "
            "est le plus typique de ce médicament ?",
        ),
        "class": (
            "A {age}-year-old {who} is treated with {drug}. To which pharmacological class "
            "does this drug belong?",
            "{Who} de {age} ans est traité{e} par {drug}. À quelle classe pharmacologique "
            "appartient ce médicament ?",
        ),
        "drug": (
            "A {age}-year-old {who} requires a drug of the following class: {cls}. Which of "
            "the following drugs belongs to this class?",
            "{Who} de {age} ans nécessite un médicament de la classe suivante : {cls}. "
            "Lequel des médicaments suivants appartient à cette classe ?",
        ),
    },
    "medmcqa": {
        "diag": (
            "The finding of {sign} is most suggestive of:",
            "Le tableau suivant évoque en premier lieu : {sign}. Il s'agit de :",
        ),
        "treat": (
            "First-line treatment of {name} is:",
            "Le traitement de première intention {de} est :",
        ),
        "test": (
            "Investigation of choice to confirm {name} is:",
            "L'examen de choix pour confirmer le diagnostic {de} est :",
        ),
        "sign": (
            "Most characteristic clinical feature of {name} is:",
            "Le signe clinique le plus caractéristique {de} est :",
        ),
        "adverse": (
            "Characteristic adverse effect of {drug} is:",
            "L'effet indésirable caractéristique {de_drug} est :",
        ),
        "class": (
            "{Drug} belongs to which drug class?",
            "À quelle classe médicamenteuse appartient le médicament suivant : {drug} ?",
        ),
        "drug": (
            "Which of the following belongs to the class {cls}?",
            "Lequel des médicaments suivants appartient à la classe : {cls} ?",
        ),
    },
    "mmlu": {
        "diag": (
            "Which of the following conditions most typically presents with {sign}?",
            "Laquelle des affections suivantes se manifeste le plus typiquement par le "
            "tableau suivant : {sign} ?",
        ),
        "treat": (
            "Which of the following is the recommended first-line treatment for {name}?",
            "Lequel des traitements suivants est recommandé en première intention dans la "
            "prise en charge {de} ?",
        ),
        "test": (
            "Which of the following tests is used first to confirm a diagnosis of {name}?",
            "Lequel des examens suivants est utilisé en premier pour confirmer le "
            "diagnostic {de} ?",
        ),
        "sign": (
            "Which of the following is the hallmark presentation of {name}?",
            "Laquelle des présentations suivantes est typique {de} ?",
        ),
        "adverse": (
            "Which of the following is a well-known adverse effect of {drug}?",
            "Lequel des effets suivants est un effet indésirable bien connu {de_drug} ?",
        ),
        "class": (
            "{Drug} is classified as which of the following?",
            "Dans quelle catégorie pharmacologique classe-t-on le médicament suivant : {drug} ?",
        ),
        "drug": (
            "Which of the following drugs is classified as a {cls}?",
            "Lequel des médicaments suivants est classé dans la catégorie suivante : {cls} ?",
        ),
    },
    "mmlu_pro": {
        "treat": (
            "Which of the following best describes the first-line management of {name}?",
            "Laquelle des propositions suivantes décrit le mieux la prise en charge de "
            "première intention {de} ?",
        ),
        "diag": (
            "A patient with {sign} most likely has which of the following conditions?",
            "Un patient présentant le tableau suivant : {sign}, est le plus probablement "
            "atteint de quelle affection ?",
        ),
        "test": (
            "Which of the following is the most appropriate initial investigation for "
            "suspected {name}?",
            "Laquelle des propositions suivantes est l'examen initial le plus approprié en "
            "cas de suspicion {de} ?",
        ),
        "adverse": (
            "Which of the following is the adverse effect most strongly associated with {drug}?",
            "Lequel des effets suivants est le plus fortement associé à la prise {de_drug} ?",
        ),
    },
    "medxpertqa": {
        "diag": (
            "A {age}-year-old {who} presents with {sign}. The first investigation performed "
            "is {test}. What is the most likely diagnosis?",
            "{Who} de {age} ans consulte pour le motif suivant : {sign}. Le premier examen "
            "réalisé est : {test}. Quel est le diagnostic le plus probable ?",
        ),
    },
}
ALL_QTYPES = ["diag", "treat", "test", "sign", "adverse", "class", "drug"]


class Maker:
    """Builds bilingual MC items of one source and registers their translations."""

    def __init__(self, style: str, rng: random.Random, tr: Translations) -> None:
        self.style, self.rng, self.tr = style, rng, tr
        self.queue = combos([q for q in ALL_QTYPES if q in STEMS[style]], rng)

    def item(self, n_options: int) -> dict[str, Any]:
        """Next item: English question, English options, correct index, entity, qtype."""
        qtype, entity = self.queue.pop(0)
        en_vals, fr_vals = values(entity, self.rng)
        en_t, fr_t = STEMS[self.style][qtype]
        question = self.tr.add(en_t.format(**en_vals), fr_t.format(**fr_vals))
        options, answer = choose_options(self.rng, entity, qtype, n_options)
        for en, fr in options:
            self.tr.add(en, fr)
        return {
            "question": question,
            "options": [en for en, _ in options],
            "answer": answer,
            "qtype": qtype,
            "entity": entity,
        }


LETTERS = "ABCDEFGHIJ"


def _age_shift(en: str, fr: str) -> tuple[str, str]:
    """The same vignette one year older (a planted near-duplicate)."""
    age = next(w for w in en.split() if w.endswith("-year-old")).split("-")[0]
    older = str(int(age) + 1)
    return (
        en.replace(f"{age}-year-old", f"{older}-year-old", 1),
        fr.replace(f" {age} ans", f" {older} ans", 1),
    )


def write_medqa(folder: Path, rng: random.Random, tr: Translations) -> None:
    """MedQA US layout: train/dev/test.jsonl, 4 options, answer_idx letter, no ids."""
    maker = Maker("medqa", rng, tr)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, n in (("test", 7), ("dev", 4), ("train", 26)):
        rows = []
        for _ in range(n):
            it = maker.item(4)
            rows.append(
                {
                    "question": it["question"],
                    "answer": it["options"][it["answer"]],
                    "options": dict(zip(LETTERS, it["options"], strict=False)),
                    "meta_info": "step1",
                    "answer_idx": LETTERS[it["answer"]],
                    "metamap_phrases": [],
                }
            )
        splits[split] = rows
    train, test = splits["train"], splits["test"]
    train[5] |= {"answer_idx": "E", "answer": "Not listed"}  # bad: letter not among options
    train[11]["answer"] = "Something else"  # bad: answer text disagrees with answer_idx
    leak = dict(test[2])  # planted near-duplicate of a test item (test leak, near)
    leak["question"] = tr.add(*_age_shift(test[2]["question"], tr.pairs[test[2]["question"]]))
    train.append(leak)
    for split, rows in splits.items():
        write_jsonl(folder / f"{split}.jsonl", rows)


DESIGNS = (
    ("a retrospective cohort study", "une étude de cohorte rétrospective"),
    ("a prospective multicentre study", "une étude prospective multicentrique"),
    ("a randomised controlled trial", "un essai contrôlé randomisé"),
)
PUBMED_QUESTIONS = {
    "treat": (
        "Does early {treat} reduce complications in adults with {name}?",
        "Le recours précoce au traitement suivant réduit-il les complications chez "
        "l'adulte atteint {de} : {treat} ?",
    ),
    "test": (
        "Is {test} useful for the early diagnosis of {name}?",
        "L'examen suivant est-il utile au diagnostic précoce {de} : {test} ?",
    ),
    "sign": (
        "Is {sign} associated with a worse prognosis in {name}?",
        "Le tableau suivant est-il associé à un pronostic plus défavorable {de} : {sign} ?",
    ),
}
PUBMED_RESULTS = {
    "yes": (
        "The primary outcome occurred in {p1}% of exposed patients versus {p2}% of "
        "controls (p < 0.01).",
        "Le critère principal est survenu chez {p1} % des patients exposés contre {p2} % "
        "des témoins (p < 0,01).",
    ),
    "no": (
        "The primary outcome occurred in {p1}% of exposed patients versus {p2}% of "
        "controls (p = 0.{pv}).",
        "Le critère principal est survenu chez {p1} % des patients exposés contre {p2} % "
        "des témoins (p = 0,{pv}).",
    ),
    "maybe": (
        "A trend was observed ({p1}% versus {p2}%), but it did not reach significance "
        "after adjustment (p = 0.08).",
        "Une tendance a été observée ({p1} % contre {p2} %), sans atteindre la "
        "significativité après ajustement (p = 0,08).",
    ),
}
PUBMED_LONG = {
    "yes": (
        "These findings support a benefit in patients with {name}.",
        "Ces résultats plaident en faveur d'un bénéfice chez les patients atteints {de}.",
    ),
    "no": (
        "These findings do not support a benefit in patients with {name}.",
        "Ces résultats ne plaident pas en faveur d'un bénéfice chez les patients atteints {de}.",
    ),
    "maybe": (
        "The evidence remains inconclusive in patients with {name}; larger trials are needed.",
        "Les données restent non concluantes chez les patients atteints {de} ; des essais "
        "plus larges sont nécessaires.",
    ),
}


def _pubmed_item(
    pmid: int, qtype: str, disease: Disease, rng: random.Random, tr: Translations
) -> dict[str, Any]:
    from medinjection.sources.pubmedqa import CONTEXT_JOIN

    en, fr = values(disease, rng)
    decision = rng.choice(["yes", "yes", "no", "maybe"])
    design = rng.choice(DESIGNS)
    n, y1 = rng.randint(80, 900), rng.randint(2005, 2015)
    p1, p2 = rng.randint(8, 30), rng.randint(8, 30)
    nums = {
        "n": n,
        "y1": y1,
        "y2": y1 + rng.randint(2, 6),
        "p1": p1,
        "p2": p2,
        "pv": rng.randint(20, 90),
    }
    contexts = [
        tr.add(
            f"The management of {en['name']} varies between centres and is a frequent "
            "reason for hospital admission.",
            f"La prise en charge {fr['de']} varie selon les centres et constitue un motif "
            "fréquent d'hospitalisation.",
        ),
        tr.add(
            "We conducted {d} including {n} patients treated between {y1} and {y2}.".format(
                d=design[0], **nums
            ),
            "Nous avons mené {d} incluant {n} patients pris en charge entre {y1} et {y2}.".format(
                d=design[1], **nums
            ),
        ),
        tr.add(
            PUBMED_RESULTS[decision][0].format(**nums), PUBMED_RESULTS[decision][1].format(**nums)
        ),
    ]
    tr.add(CONTEXT_JOIN.join(contexts), CONTEXT_JOIN.join(tr.pairs[c] for c in contexts))
    q_en, q_fr = PUBMED_QUESTIONS[qtype]
    long_en, long_fr = PUBMED_LONG[decision]
    for en_s, fr_s in (("yes", "oui"), ("no", "non"), ("maybe", "peut-être")):
        tr.add(en_s, fr_s)
    return {
        str(pmid): {
            "QUESTION": tr.add(q_en.format(**en), q_fr.format(**fr)),
            "CONTEXTS": contexts,
            "LABELS": ["BACKGROUND", "METHODS", "RESULTS"],
            "MESHES": [cap(disease.en), "Humans"],
            "YEAR": str(nums["y2"] + 1),
            "reasoning_required_pred": decision,
            "reasoning_free_pred": decision,
            "final_decision": decision,
            "LONG_ANSWER": tr.add(long_en.format(**en), long_fr.format(**fr)),
        }
    }


def write_pubmedqa(folder: Path, rng: random.Random, tr: Translations) -> None:
    """PubMedQA data/ori_pqal.json: one object keyed by PMID, upper-case keys."""
    data: dict[str, Any] = {}
    items = combos(list(PUBMED_QUESTIONS), rng)[:32]
    for k, (qtype, disease) in enumerate(items):
        data |= _pubmed_item(21000000 + 7919 * k, qtype, disease, rng, tr)
    bad = next(iter(data.values()))
    bad["final_decision"] = "unsure"  # bad: not yes/no/maybe
    write_json(folder / "data" / "ori_pqal.json", data)


def _medmcqa_row(it: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    row = {"id": f"{rng.getrandbits(128):032x}", "question": it["question"]}
    row |= dict(zip(("opa", "opb", "opc", "opd"), it["options"], strict=True))
    entity = it["entity"]
    subject = entity.specialty if isinstance(entity, Disease) else "pharmacologie"
    row |= {
        "cop": it["answer"],
        "choice_type": "single",
        "exp": None if rng.random() < 0.4 else "Ans. is the standard first-line option.",
        "subject_name": {"pharmacologie": "Pharmacology"}.get(subject, "Medicine"),
        "topic_name": None,
    }
    return row


def write_medmcqa(folder: Path, rng: random.Random, tr: Translations) -> None:
    """MedMCQA HF parquet: data/{train,validation,test}-00000-of-00001.parquet, 0-based cop."""
    maker = Maker("medmcqa", rng, tr)
    validation = [_medmcqa_row(maker.item(4), rng) for _ in range(8)]
    train = [_medmcqa_row(maker.item(4), rng) for _ in range(28)]
    train[3]["cop"] = 4  # bad: not a 0-based index of 4 options
    leak = dict(validation[1])  # planted exact duplicate of a test item, options re-ordered
    leak["id"] = f"{rng.getrandbits(128):032x}"
    leak["opa"], leak["opb"] = validation[1]["opb"], validation[1]["opa"]
    leak["cop"] = {0: 1, 1: 0}.get(validation[1]["cop"], validation[1]["cop"])
    train.append(leak)
    test = [dict(_medmcqa_row(maker.item(4), rng), cop=-1) for _ in range(6)]
    for split, rows in (("train", train), ("validation", validation), ("test", test)):
        write_parquet(folder / "data" / f"{split}-00000-of-00001.parquet", rows)


def write_medxpertqa(folder: Path, rng: random.Random, tr: Translations) -> None:
    """MedXpertQA Text/{dev,test}.jsonl: options dict A-J, label letter, choices in question."""
    maker = Maker("medxpertqa", rng, tr)
    for split, n, first in (("dev", 5, 1), ("test", 11, 100)):
        rows = []
        for k in range(n):
            it = maker.item(10)
            choices = " ".join(f"({L}) {t}" for L, t in zip(LETTERS, it["options"], strict=True))
            rows.append(
                {
                    "id": f"Text-{first + k}",
                    "question": f"{it['question']}\nAnswer Choices: {choices}",
                    "options": dict(zip(LETTERS, it["options"], strict=True)),
                    "label": LETTERS[it["answer"]],
                    "medical_task": "Diagnosis",
                    "body_system": it["entity"].specialty,
                    "question_type": "Reasoning",
                }
            )
        if split == "test":
            rows[4]["label"] = "K"  # bad: no option K
        write_jsonl(folder / "Text" / f"{split}.jsonl", rows)


MMLU_SUBJECTS = {
    "diag": "clinical_knowledge",
    "sign": "clinical_knowledge",
    "treat": "professional_medicine",
    "test": "college_medicine",
    "adverse": "college_medicine",
    "class": "anatomy",
    "drug": "medical_genetics",
}
NON_MEDICAL = [
    (
        "What is the SI unit of force?",
        "high_school_physics",
        ["Newton", "Joule", "Watt", "Pascal"],
        0,
    ),
    (
        "Which body wrote the Magna Carta?",
        "high_school_european_history",
        ["English barons", "The Pope", "French kings", "Roman senate"],
        0,
    ),
]


def write_mmlu(folder: Path, rng: random.Random, tr: Translations) -> None:
    """MMLU HF parquet all/{dev,validation,test}-00000-of-00001.parquet with non-medical rows."""
    maker = Maker("mmlu", rng, tr)
    for split, n in (("dev", 10), ("validation", 4), ("test", 8)):
        rows = []
        for _ in range(n):
            it = maker.item(4)
            rows.append(
                {
                    "question": it["question"],
                    "subject": MMLU_SUBJECTS[it["qtype"]],
                    "choices": it["options"],
                    "answer": it["answer"],
                }
            )
        q, subject, choices, answer = NON_MEDICAL[len(split) % 2]
        rows.insert(2, {"question": q, "subject": subject, "choices": choices, "answer": answer})
        if split == "dev":
            rows[6]["answer"] = 4  # bad: index outside the 4 choices
        write_parquet(folder / "all" / f"{split}-00000-of-00001.parquet", rows)


def write_mmlu_pro(folder: Path, rng: random.Random, tr: Translations) -> None:
    """MMLU-Pro HF parquet data/{validation,test}-*.parquet, 6-8 options, letter + index."""
    maker = Maker("mmlu_pro", rng, tr)
    qid = 7000
    for split, n in (("validation", 9), ("test", 9)):
        rows = []
        for _ in range(n):
            it = maker.item(rng.choice([6, 7, 8]))
            qid += 1
            rows.append(
                {
                    "question_id": qid,
                    "question": it["question"],
                    "options": it["options"],
                    "answer": LETTERS[it["answer"]],
                    "answer_index": it["answer"],
                    "cot_content": "",
                    "category": "health",
                    "src": "ori_mmlu-demo",
                }
            )
        rows.append(
            {
                "question_id": qid + 500,
                "question": "Which contract term is void?",
                "options": ["A penalty clause", "A warranty", "A condition"],
                "answer": "A",
                "answer_index": 0,
                "cot_content": "",
                "category": "law",
                "src": "demo",
            }
        )
        if split == "test":
            rows[3]["options"] = []  # bad: no options
        write_parquet(folder / "data" / f"{split}-00000-of-00001.parquet", rows)


ENGLISH_WRITERS: dict[str, Callable[[Path, random.Random, Translations], None]] = {
    "medqa": write_medqa,
    "pubmedqa": write_pubmedqa,
    "medmcqa": write_medmcqa,
    "medxpertqa": write_medxpertqa,
    "mmlu": write_mmlu,
    "mmlu_pro": write_mmlu_pro,
}
