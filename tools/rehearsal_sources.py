"""Generated raw files of every study source, in each repository's real file tree and format.

One function per source repository writes its whole file tree (at the pinned revision) under a
folder; tools/rehearsal_hub.py turns those folders into a Hugging Face cache, and the local
sources (MedQA release, DEFT-2021, S-Editions, WMT24 test file, judge annotations) are written
where config/config.yaml expects them. Sizes are the published ones (study.md §11) times `scale`.

Where each layout comes from (LAYOUTS below says it per repository): "card" = the dataset card /
Hub tree page as quoted in study.md; "loader" = the repository's own (or DrBenchmark's) loading
script, which names the files inside data.zip; "inferred" = not seen anywhere, the layout the
project's adapter assumes (so the rehearsal cannot test it; a real run may still differ).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from demo_corpora import MORFITT_LABELS  # the same 12 specialties as the demo's MORFITT
from rehearsal_text import (
    DUPLICATE_RATE,
    MALFORMED_RATE,
    SMALL,
    TEST_IN_TRAIN_RATE,
    Writer,
    malformed_minimum,
)

Rows = list[dict[str, Any]]
LETTERS5 = "ABCDE"

LAYOUTS: dict[str, str] = {
    "ANR-MALADES/MediQAl": "card: configs mcqu/mcqm/oeq, splits and counts; file names "
    "<config>/<split>-00000-of-00001.parquet inferred (the Hub's parquet naming)",
    "DrBenchmark/FrenchMedMCQA": "loader: data.zip holding train.json, dev.json, test.json at its "
    "root; FrenchMedMCQA.py + README.md beside it",
    "kadzaki/FrBMedQA": "inferred: {train,dev,test}.jsonl with the fields the adapter assumes "
    "(no file or field name of this repository was visible); 19,836 items (MedInjection's count, "
    "the repository has 41k+), split 80/10/10 inferred",
    "mlabonne/medical-cases-fr": "card: data/train-*.parquet + data/eval-*.parquet; fields "
    "inferred; counts inferred (12,194 together with medical-mqca-fr, per the Native card)",
    "mlabonne/medical-mqca-fr": "card: data/train-00000-of-00001.parquet (2.03 MB) + "
    "data/eval-00000-of-00001.parquet (96.2 kB); fields inferred",
    "qiaojin/PubMedQA": "card: pqa_artificial/, pqa_labeled/, pqa_unlabeled/ each one "
    "train-00000-of-00001.parquet; 211,269 / 1,000 / 61,249 rows",
    "openlifescienceai/medmcqa": "card: data/{train,validation,test}-00000-of-00001.parquet; "
    "182,822 / 4,183 / 6,150 rows; test cop = -1",
    "TsinghuaC3I/MedXpertQA": "card: Text/{dev,test}.jsonl, MM/{dev,test}.jsonl, images.zip",
    "cais/mmlu": "Hub tree: one folder per subject (57) with dev/validation/test parquet, all/ "
    "with auxiliary_train/dev/test/validation, auxiliary_train/train (rows nested in a 'train' "
    "struct); per-subject counts from the MMLU paper's tables as remembered (totals 14,042 test / "
    "1,531 validation / 285 dev / 99,842 auxiliary train)",
    "TIGER-Lab/MMLU-Pro": "card: data/test-00000-of-00001.parquet (12,032 rows, 14 categories) "
    "and data/validation-00000-of-00001.parquet (70 rows)",
    "Dr-BERT/DiaMED": "loader (DrBenchmark DiaMED.py): data.zip with splits/{train,validation,"
    "test}.json (raw field 'domain', renamed 'domains' by the loader) and figures; 739 cases, "
    "split inferred",
    "qanastek/MORFITT": "loader: data.zip with train.tsv, dev.tsv, test.tsv (identifier, "
    "abstract, specialities); 1,514 / 1,022 / 1,088",
}


# Below full scale every pool keeps a floor: a source split (and so a test set, or a task's part
# of a split) holds at least POOL_MINIMUM items, enough for a test set's draw after the study's
# plan.dedup_loss (floor(3 x 0.95) = 2 >= 1) and for a translation quarantine or a dedup to cost
# one item. A split holding two tasks keeps the floor for each (FrenchMedMCQA). At scale 1.0 the
# published counts are used unchanged (min(count, max(minimum, count)) = count).
POOL_MINIMUM = 3


def scaled(count: int, scale: float, minimum: int = POOL_MINIMUM) -> int:
    """The published count times scale, at least `minimum` (never more than the count)."""
    return min(count, max(minimum, round(count * scale)))


def write_parquet(path: Path, rows: Rows, schema: pa.Schema) -> None:
    """One HF-style parquet file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_text(path: Path, text: str) -> None:
    """A UTF-8 text file (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def jsonl(rows: Rows) -> str:
    """JSON Lines text."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip of {member name: content}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def card(root: Path, repo: str, extra: str = "") -> None:
    """README.md (dataset card stand-in naming the layout's evidence) and .gitattributes."""
    write_text(
        root / "README.md",
        f"---\nlicense: other\n---\n# {repo} (rehearsal stand-in)\n\nGenerated content; layout: "
        f"{LAYOUTS.get(repo, 'n/a')}\n{extra}",
    )
    write_text(
        root / ".gitattributes",
        "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
        "*.zip filter=lfs diff=lfs merge=lfs -text\n*.json filter=lfs diff=lfs merge=lfs -text\n",
    )


def mess(
    splits: dict[str, Rows],
    writer: Writer,
    renew: Callable[[dict[str, Any], str], dict[str, Any]],
    breaks: Callable[[dict[str, Any]], None],
    train: str = "train",
    test: str = "test",
) -> dict[str, int]:
    """Bake in test items repeated in train, duplicates inside train and malformed train rows."""
    counts = {"test_in_train": 0, "duplicates": 0, "malformed": 0}
    pool = splits.get(train)
    if not pool:
        return counts
    for i in writer.pick(range(len(splits.get(test, []))), TEST_IN_TRAIN_RATE, 1):
        pool.append(renew(dict(splits[test][i]), f"tit{i}"))
        counts["test_in_train"] += 1
    for i in writer.pick(range(len(pool)), DUPLICATE_RATE, 1):
        pool.append(renew(dict(pool[i]), f"dup{i}"))
        counts["duplicates"] += 1
    for i in writer.pick(range(len(pool)), MALFORMED_RATE, malformed_minimum(len(pool))):
        breaks(pool[i])
        counts["malformed"] += 1
    return counts


# ------------------------------------------------------------------ native French sources

MEDIQAL_COUNTS = {
    "mcqu": {"train": 10113, "validation": 2561, "test": 4343},
    "mcqm": {"train": 5767, "validation": 1466, "test": 3384},
    "oeq": {"test": 4969},
}
MEDIQAL_MCQ = pa.schema(
    [("id", pa.string()), ("clinical_case", pa.string()), ("question", pa.string())]
    + [(f"answer_{x}", pa.string()) for x in "abcde"]
    + [
        ("correct_answers", pa.string()),
        ("medical_subject", pa.string()),
        ("question_type", pa.string()),
    ]
)
MEDIQAL_OEQ = pa.schema(
    [
        ("id", pa.string()),
        ("clinical_case", pa.string()),
        ("cc_question_number", pa.int64()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("medical_subject", pa.string()),
        ("question_type", pa.string()),
    ]
)
SUBJECTS_FR = (
    "cardiologie",
    "pneumologie",
    "neurologie",
    "pédiatrie",
    "gastro-entérologie",
    "infectiologie",
    "pharmacologie",
    "dermatologie",
    "psychiatrie",
    "urologie",
)


def build_mediqal(root: Path, scale: float) -> dict[str, int]:
    """ANR-MALADES/MediQAl: three configs of parquet files."""
    w = Writer("mediqal", "fr")
    counts: dict[str, int] = {}
    for config, splits in MEDIQAL_COUNTS.items():
        rows = {
            s: [_mediqal_row(w, config, s, i) for i in range(scaled(n, scale))]
            for s, n in splits.items()
        }

        def renew(row: dict[str, Any], tag: str, config: str = config) -> dict[str, Any]:
            return row | {"id": f"{config}-{tag}"}

        def breaks(row: dict[str, Any]) -> None:
            row["id"] = None  # a row without id (quarantined by the adapter)

        if config == "oeq":  # test only: duplicates inside the test split
            for i in w.pick(range(len(rows["test"])), DUPLICATE_RATE, 1):
                rows["test"].append(renew(dict(rows["test"][i]), f"dup{i}"))
            if len(rows["test"]) >= SMALL:
                rows["test"][0]["id"] = None
        else:
            mess(rows, w, renew, breaks)
        schema = MEDIQAL_OEQ if config == "oeq" else MEDIQAL_MCQ
        for split, split_rows in rows.items():
            write_parquet(root / config / f"{split}-00000-of-00001.parquet", split_rows, schema)
            counts[f"{config}/{split}"] = len(split_rows)
    card(root, "ANR-MALADES/MediQAl")
    return counts


def _mediqal_row(w: Writer, config: str, split: str, i: int) -> dict[str, Any]:
    case = w.text(600) if w.rng.random() < 0.35 else None  # clinical_case is often null
    base = {
        "id": f"{config}-{split}-{i:06d}",
        "clinical_case": case,
        "medical_subject": w.rng.choice(SUBJECTS_FR),
        "question_type": "cas clinique" if case else "isolée",
    }
    if config == "oeq":
        return base | {"cc_question_number": 1, "question": w.question(160), "answer": w.text(300)}
    options = w.options(5, 6)
    k = 1 if config == "mcqu" else w.rng.randint(2, 4)
    correct = sorted(w.rng.sample(LETTERS5, k))
    return (
        base
        | {"question": w.question(160), "correct_answers": ",".join(correct)}
        | {f"answer_{x}": text for x, text in zip("abcde", options, strict=True)}
    )


FMMCQA_COUNTS = {"train": 2171, "dev": 312, "test": 622}


def build_frenchmedmcqa(root: Path, scale: float, shared: Rows) -> dict[str, int]:
    """DrBenchmark/FrenchMedMCQA: data.zip with train/dev/test JSON arrays (+ loader script)."""
    w = Writer("frenchmedmcqa", "fr")
    # two tasks share each split (single answer: mcqu, several: mcq): the floor holds for both
    rows = {
        s: [_fmmcqa_row(w, s, i) for i in range(scaled(n, scale, 2 * POOL_MINIMUM))]
        for s, n in FMMCQA_COUNTS.items()
    }
    if scale < 1.0:
        for split_rows in rows.values():
            _cover_answer_counts(split_rows, POOL_MINIMUM)

    def renew(row: dict[str, Any], tag: str) -> dict[str, Any]:
        return row | {"id": w.hexid("fmmcqa", tag)}

    def breaks(row: dict[str, Any]) -> None:
        row["correct_answers"] = "e"  # a string instead of a list

    counts = mess(rows, w, renew, breaks, test="test")
    for row in rows["test"]:
        row.pop("type", None)  # absent in test (real-records README)
    # the same exam questions circulate in the mlabonne sets: hand some over (cross-source dup)
    shared.extend(rows["train"][i] for i in w.pick(range(len(rows["train"])), 0.02, 2))
    members = {f"{s}.json": json.dumps(r, ensure_ascii=False).encode() for s, r in rows.items()}
    write_bytes(root / "data.zip", zip_bytes(members))
    write_text(root / "FrenchMedMCQA.py", "# loading script (stand-in): reads data.zip\n")
    card(root, "DrBenchmark/FrenchMedMCQA")
    return {s: len(r) for s, r in rows.items()} | counts


def _cover_answer_counts(rows: Rows, minimum: int) -> None:
    """Turn items over (no randomness) until single- and multiple-answer items number at least
    `minimum` each (a split of >= 2 x minimum rows); below full scale only."""
    single = [r for r in rows if len(r["correct_answers"]) == 1]
    multiple = [r for r in rows if len(r["correct_answers"]) > 1]
    for row in multiple[: max(0, minimum - len(single))]:
        row |= {"correct_answers": row["correct_answers"][:1], "type": "simple",
                "nbr_correct_answers": 1}  # fmt: skip
    for row in single[: max(0, minimum - len(multiple))]:
        extra = next(x for x in "abcde" if x not in row["correct_answers"])
        letters = sorted([*row["correct_answers"], extra])
        row |= {"correct_answers": letters, "type": "multiple", "nbr_correct_answers": 2}


def _fmmcqa_row(w: Writer, split: str, i: int) -> dict[str, Any]:
    options = w.options(5, 5)
    k = 1 if w.rng.random() < 0.3 else w.rng.randint(2, 5)
    correct = sorted(w.rng.sample("abcde", k))
    return {
        "id": w.hexid("fmmcqa", split, i),
        "question": w.question(120),
        "answers": dict(zip("abcde", options, strict=True)),
        "correct_answers": correct,
        "subject_name": "pharmacie",
        "type": "simple" if k == 1 else "multiple",
        "nbr_correct_answers": k,
    }


def write_bytes(path: Path, data: bytes) -> None:
    """A binary file (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


FRBMEDQA_COUNTS = {"train": 15869, "dev": 1983, "test": 1984}


def build_frbmedqa(root: Path, scale: float) -> dict[str, int]:
    """kadzaki/FrBMedQA (layout inferred): cloze items as JSON Lines."""
    w = Writer("frbmedqa", "fr")
    rows = {
        s: [_frbmedqa_row(w, s, i) for i in range(scaled(n, scale))]
        for s, n in FRBMEDQA_COUNTS.items()
    }

    def renew(row: dict[str, Any], tag: str) -> dict[str, Any]:
        return row | {"id": f"frb-{tag}"}

    def breaks(row: dict[str, Any]) -> None:
        row["answer"] = "entité absente"  # not among the candidates

    counts = mess(rows, w, renew, breaks)
    for split, split_rows in rows.items():
        write_text(root / f"{split}.jsonl", jsonl(split_rows))
    card(root, "kadzaki/FrBMedQA")
    return {s: len(r) for s, r in rows.items()} | counts


def _frbmedqa_row(w: Writer, split: str, i: int) -> dict[str, Any]:
    candidates = w.options(w.rng.randint(3, 6), 2)
    return {
        "id": f"frb-{split}-{i:06d}",
        "passage": w.text(700),
        "question": f"{w.words_text(10)} @placeholder {w.words_text(6)}.",
        "candidates": candidates,
        "answer": w.rng.choice(candidates),
    }


MLABONNE_SCHEMAS = {
    "cases": pa.schema(
        [("clinical_case", pa.string()), ("question", pa.string()), ("answer", pa.string())]
    ),
    "mqca": pa.schema(
        [("question", pa.string()), ("choices", pa.list_(pa.string())), ("answer", pa.string())]
    ),
}
MLABONNE_COUNTS = {"cases": {"train": 4620, "eval": 244}, "mqca": {"train": 7000, "eval": 330}}


def build_mlabonne(root: Path, scale: float, kind: str, shared: Rows) -> dict[str, int]:
    """mlabonne/medical-cases-fr or -mqca-fr: data/{train,eval}-*.parquet (fields inferred)."""
    w = Writer(f"mlabonne-{kind}", "fr")
    make = _cases_row if kind == "cases" else _mqca_row
    rows = {s: [make(w) for _ in range(scaled(n, scale))] for s, n in MLABONNE_COUNTS[kind].items()}

    def breaks(row: dict[str, Any]) -> None:
        if kind == "mqca":
            row["choices"] = None
        else:
            row["question"] = None

    counts = mess(rows, w, lambda row, _tag: row, breaks, test="eval")
    if kind == "mqca":  # FrenchMedMCQA questions found again here (cross-source duplicates)
        for item in shared:
            letters = [x.upper() for x in item["correct_answers"] if isinstance(x, str)]
            rows["train"].append(
                {
                    "question": item["question"],
                    "choices": list(item["answers"].values()),
                    "answer": ",".join(letters) or "A",
                }
            )
        counts["cross_source"] = len(shared)
    for split, split_rows in rows.items():
        write_parquet(
            root / "data" / f"{split}-00000-of-00001.parquet", split_rows, MLABONNE_SCHEMAS[kind]
        )
    card(root, f"mlabonne/medical-{kind}-fr".replace("medical-mqca-fr", "medical-mqca-fr"))
    return {s: len(r) for s, r in rows.items()} | counts


def _cases_row(w: Writer) -> dict[str, Any]:
    return {"clinical_case": w.text(900), "question": w.question(140), "answer": w.text(350)}


def _mqca_row(w: Writer) -> dict[str, Any]:
    n = w.rng.choice((4, 5, 5))
    k = 1 if w.rng.random() < 0.6 else 2
    return {
        "question": w.question(150),
        "choices": w.options(n, 5),
        "answer": ",".join(sorted(w.rng.sample(LETTERS5[:n], k))),
    }


# ------------------------------------------------------------------ English sources (translated)

PUBMEDQA_COUNTS = {"pqa_artificial": 211269, "pqa_labeled": 1000, "pqa_unlabeled": 61249}
_CONTEXT = pa.struct(
    [
        ("contexts", pa.list_(pa.string())),
        ("labels", pa.list_(pa.string())),
        ("meshes", pa.list_(pa.string())),
    ]
)
_CONTEXT_LABELED = pa.struct(
    list(_CONTEXT)
    + [
        ("reasoning_required_pred", pa.list_(pa.string())),
        ("reasoning_free_pred", pa.list_(pa.string())),
    ]
)


def _pubmedqa_schema(config: str) -> pa.Schema:
    fields = [
        ("pubid", pa.int32()),
        ("question", pa.string()),
        ("context", _CONTEXT_LABELED if config == "pqa_labeled" else _CONTEXT),
        ("long_answer", pa.string()),
    ]
    if config != "pqa_unlabeled":
        fields.append(("final_decision", pa.string()))
    return pa.schema(fields)


def build_pubmedqa(root: Path, scale: float) -> dict[str, int]:
    """qiaojin/PubMedQA: three configs, one train parquet each."""
    w = Writer("pubmedqa", "en")
    counts = {}
    base = {"pqa_labeled": 10_000_000, "pqa_artificial": 20_000_000, "pqa_unlabeled": 30_000_000}
    for config, count in PUBMEDQA_COUNTS.items():
        rows = [_pubmedqa_row(w, config, base[config] + i) for i in range(scaled(count, scale))]
        if config != "pqa_unlabeled":
            for i in w.pick(range(len(rows)), MALFORMED_RATE, malformed_minimum(len(rows))):
                rows[i]["final_decision"] = ""  # no decision (quarantined)
        write_parquet(
            root / config / "train-00000-of-00001.parquet", rows, _pubmedqa_schema(config)
        )
        counts[config] = len(rows)
    card(root, "qiaojin/PubMedQA")
    return counts


def _pubmedqa_row(w: Writer, config: str, pubid: int) -> dict[str, Any]:
    sections = [w.text(w.rng.randint(300, 650)) for _ in range(w.rng.randint(2, 4))]
    context = {
        "contexts": sections,
        "labels": ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"][: len(sections)],
        "meshes": [w.words_text(2) for _ in range(4)],
    }
    if config == "pqa_labeled":
        context |= {"reasoning_required_pred": ["yes"], "reasoning_free_pred": ["yes"]}
    row = {
        "pubid": pubid,
        "question": w.question(110),
        "context": context,
        "long_answer": w.text(220),
    }
    if config != "pqa_unlabeled":
        choices = ("yes", "no", "maybe") if config == "pqa_labeled" else ("yes", "no")
        row["final_decision"] = w.rng.choice(choices)
    return row


def build_pubmedqa_github(root: Path, scale: float) -> dict[str, int]:
    """github.com/pubmedqa/pubmedqa data/ (the study's pubmedqa and pubmedqa_oeq location):
    ori_pqal.json, the 1,000 labelled PMIDs in upper-case keys, and test_ground_truth.json, the
    official 500 test PMIDs -> decision (layout and keys as documented in sources/pubmedqa.py)."""
    w = Writer("pubmedqa-github", "en")
    items = {}
    # half of the items are the official test split: the floor holds for test and train
    for i in range(scaled(PUBMEDQA_COUNTS["pqa_labeled"], scale, 2 * POOL_MINIMUM)):
        row = _pubmedqa_row(w, "pqa_labeled", 10_000_000 + i)
        context = row["context"]
        items[str(row["pubid"])] = {
            "QUESTION": row["question"], "CONTEXTS": context["contexts"],
            "LABELS": context["labels"], "MESHES": context["meshes"], "YEAR": "2010",
            "reasoning_required_pred": "yes", "reasoning_free_pred": "yes",
            "final_decision": row["final_decision"], "LONG_ANSWER": row["long_answer"],
        }  # fmt: skip
    test = list(items)[: max(1, len(items) // 2)]  # 500 of 1,000 in the release
    write_text(root / "data" / "ori_pqal.json", json.dumps(items))
    truth = {pmid: items[pmid]["final_decision"] for pmid in test}
    write_text(root / "data" / "test_ground_truth.json", json.dumps(truth))
    return {"ori_pqal": len(items), "test_ground_truth": len(test)}


MEDMCQA_COUNTS = {"train": 182822, "validation": 4183, "test": 6150}
MEDMCQA_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("opa", pa.string()),
        ("opb", pa.string()),
        ("opc", pa.string()),
        ("opd", pa.string()),
        ("cop", pa.int64()),
        ("choice_type", pa.string()),
        ("exp", pa.string()),
        ("subject_name", pa.string()),
        ("topic_name", pa.string()),
    ]
)


def build_medmcqa(root: Path, scale: float, medqa_test: Rows) -> dict[str, int]:
    """openlifescienceai/medmcqa: data/{train,validation,test} parquet; test unlabelled."""
    w = Writer("medmcqa", "en")
    rows = {
        s: [_medmcqa_row(w, s, i) for i in range(scaled(n, scale))]
        for s, n in MEDMCQA_COUNTS.items()
    }
    for row in rows["test"]:
        row["cop"] = -1

    def renew(row: dict[str, Any], tag: str) -> dict[str, Any]:
        return row | {"id": w.hexid("medmcqa", tag)[:36]}

    def breaks(row: dict[str, Any]) -> None:
        row["cop"] = 4  # out of range

    counts = mess(rows, w, renew, breaks, test="validation")  # validation is the labelled test
    # a few MedQA test questions also sit in MedMCQA's training pool (cross-source)
    four = [item for item in medqa_test if item["answer_idx"] in "ABCD"]  # MedMCQA has 4 options
    for n, item in enumerate(four[: max(1, len(medqa_test) // 200)]):
        options = [item["options"][x] for x in "ABCD"]
        rows["train"].append(
            {
                "id": w.hexid("medqa-in-medmcqa", n)[:36],
                "question": item["question"],
                "opa": options[0],
                "opb": options[1],
                "opc": options[2],
                "opd": options[3],
                "cop": "ABCD".index(item["answer_idx"]),
                "choice_type": "single",
                "exp": None,
                "subject_name": "Medicine",
                "topic_name": None,
            }
        )
    for split, split_rows in rows.items():
        write_parquet(root / "data" / f"{split}-00000-of-00001.parquet", split_rows, MEDMCQA_SCHEMA)
    card(root, "openlifescienceai/medmcqa")
    return {s: len(r) for s, r in rows.items()} | counts


def _medmcqa_row(w: Writer, split: str, i: int) -> dict[str, Any]:
    options = w.options(4, 3)
    return {
        "id": w.hexid("medmcqa", split, i)[:36],
        "question": w.question(90),
        "opa": options[0],
        "opb": options[1],
        "opc": options[2],
        "opd": options[3],
        "cop": w.rng.randrange(4),
        "choice_type": "single",
        "exp": w.text(200) if w.rng.random() < 0.5 else None,
        "subject_name": w.rng.choice(("Anatomy", "Medicine", "Pharmacology", "Surgery")),
        "topic_name": None,
    }


MEDQA_COUNTS = {"train": 10178, "dev": 1272, "test": 1273}


def build_medqa(root: Path, scale: float) -> tuple[dict[str, int], Rows]:
    """MedQA release (local): questions/US/{train,dev,test}.jsonl; returns the test rows too."""
    w = Writer("medqa", "en")
    rows = {s: [_medqa_row(w) for _ in range(scaled(n, scale))] for s, n in MEDQA_COUNTS.items()}

    def breaks(row: dict[str, Any]) -> None:
        row["answer"] = "an answer text no option has"  # disagrees with answer_idx

    counts = mess(rows, w, lambda row, _tag: row, breaks)
    for split, split_rows in rows.items():
        write_text(root / "questions" / "US" / f"{split}.jsonl", jsonl(split_rows))
    return {s: len(r) for s, r in rows.items()} | counts, rows["test"]


def _medqa_row(w: Writer) -> dict[str, Any]:
    options = dict(zip("ABCDE", w.options(5, 4), strict=True))
    letter = w.rng.choice("ABCDE")
    return {
        "question": w.question(800),
        "answer": options[letter],
        "options": options,
        "meta_info": "step1",
        "answer_idx": letter,
        "metamap_phrases": w.words_text(12).split(),
    }


MEDXPERTQA_COUNTS = {"Text": {"dev": 5, "test": 2450}, "MM": {"dev": 5, "test": 2000}}


def build_medxpertqa(root: Path, scale: float) -> dict[str, int]:
    """TsinghuaC3I/MedXpertQA: Text/ and MM/ JSON Lines, images.zip."""
    w = Writer("medxpertqa", "en")
    counts = {}
    for config, splits in MEDXPERTQA_COUNTS.items():
        for split, n in splits.items():
            count = n if split == "dev" else scaled(n, scale)
            rows = [_medxpertqa_row(w, config, split, i) for i in range(count)]
            if split == "test" and count >= SMALL:
                rows[0]["options"] = [rows[0]["options"]]  # a list, not a dict (quarantined)
            write_text(root / config / f"{split}.jsonl", jsonl(rows))
            counts[f"{config}/{split}"] = len(rows)
    write_bytes(root / "images.zip", zip_bytes({"images/MM-0-a.jpeg": b"\xff\xd8\xff"}))
    card(root, "TsinghuaC3I/MedXpertQA")
    return counts


def _medxpertqa_row(w: Writer, config: str, split: str, i: int) -> dict[str, Any]:
    letters = "ABCDEFGHIJ" if config == "Text" else "ABCDE"
    options = dict(zip(letters, w.options(len(letters), 6), strict=True))
    block = " ".join(f"({x}) {t}" for x, t in options.items())
    row = {
        "id": f"{config}-{split}-{i}",
        "question": f"{w.question(1000)}\nAnswer Choices: {block}",
        "options": options,
        "label": w.rng.choice(letters),
        "medical_task": "Diagnosis",
        "body_system": "Cardiovascular",
        "question_type": "Reasoning",
    }
    if config == "MM":
        row["images"] = [f"MM-{i}-a.jpeg"]
    return row


# (test, validation) rows per MMLU subject; dev has 5 per subject
MMLU_SUBJECTS: dict[str, tuple[int, int]] = {
    "abstract_algebra": (100, 11),
    "anatomy": (135, 14),
    "astronomy": (152, 16),
    "business_ethics": (100, 11),
    "clinical_knowledge": (265, 29),
    "college_biology": (144, 16),
    "college_chemistry": (100, 8),
    "college_computer_science": (100, 11),
    "college_mathematics": (100, 11),
    "college_medicine": (173, 22),
    "college_physics": (102, 11),
    "computer_security": (100, 11),
    "conceptual_physics": (235, 26),
    "econometrics": (114, 12),
    "electrical_engineering": (145, 16),
    "elementary_mathematics": (378, 41),
    "formal_logic": (126, 14),
    "global_facts": (100, 10),
    "high_school_biology": (310, 32),
    "high_school_chemistry": (203, 22),
    "high_school_computer_science": (100, 9),
    "high_school_european_history": (165, 18),
    "high_school_geography": (198, 22),
    "high_school_government_and_politics": (193, 21),
    "high_school_macroeconomics": (390, 43),
    "high_school_mathematics": (270, 29),
    "high_school_microeconomics": (238, 26),
    "high_school_physics": (151, 17),
    "high_school_psychology": (545, 60),
    "high_school_statistics": (216, 23),
    "high_school_us_history": (204, 22),
    "high_school_world_history": (237, 26),
    "human_aging": (223, 23),
    "human_sexuality": (131, 12),
    "international_law": (121, 13),
    "jurisprudence": (108, 11),
    "logical_fallacies": (163, 18),
    "machine_learning": (112, 11),
    "management": (103, 11),
    "marketing": (234, 25),
    "medical_genetics": (100, 11),
    "miscellaneous": (783, 86),
    "moral_disputes": (346, 38),
    "moral_scenarios": (895, 100),
    "nutrition": (306, 33),
    "philosophy": (311, 34),
    "prehistory": (324, 35),
    "professional_accounting": (282, 31),
    "professional_law": (1534, 170),
    "professional_medicine": (272, 31),
    "professional_psychology": (612, 69),
    "public_relations": (110, 12),
    "security_studies": (245, 27),
    "sociology": (201, 22),
    "us_foreign_policy": (100, 11),
    "virology": (166, 18),
    "world_religions": (171, 19),
}
MMLU_AUX_TRAIN = 99842
MMLU_ROW = pa.struct(
    [
        ("question", pa.string()),
        ("subject", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("answer", pa.int64()),
    ]
)
MMLU_SCHEMA = pa.schema(list(MMLU_ROW))


def build_mmlu(root: Path, scale: float) -> tuple[dict[str, int], Rows]:
    """cais/mmlu: a folder per subject, all/ (all subjects + auxiliary_train), auxiliary_train/."""
    w = Writer("mmlu", "en")
    every: dict[str, Rows] = {"dev": [], "validation": [], "test": []}
    for subject, (test, validation) in MMLU_SUBJECTS.items():
        sizes = {"dev": 5, "validation": scaled(validation, scale, 2), "test": scaled(test, scale)}
        for split, n in sizes.items():
            rows = [_mmlu_row(w, subject) for _ in range(n)]
            if split == "test" and subject == "anatomy" and n >= SMALL:
                rows[0]["answer"] = None  # a label missing (quarantined)
            write_parquet(root / subject / f"{split}-00000-of-00001.parquet", rows, MMLU_SCHEMA)
            every[split].extend(rows)
    aux = [_mmlu_row(w, "") for _ in range(scaled(MMLU_AUX_TRAIN, scale))]
    for split, rows in every.items():
        write_parquet(root / "all" / f"{split}-00000-of-00001.parquet", rows, MMLU_SCHEMA)
    write_parquet(root / "all" / "auxiliary_train-00000-of-00001.parquet", aux, MMLU_SCHEMA)
    write_parquet(
        root / "auxiliary_train" / "train-00000-of-00001.parquet",
        [{"train": row} for row in aux],
        pa.schema([("train", MMLU_ROW)]),
    )
    card(root, "cais/mmlu")
    return {s: len(r) for s, r in every.items()} | {"auxiliary_train": len(aux)}, every["test"]


def _mmlu_row(w: Writer, subject: str) -> dict[str, Any]:
    return {
        "question": w.question(200),
        "subject": subject,
        "choices": w.options(4, 4),
        "answer": w.rng.randrange(4),
    }


MMLU_PRO_TEST = {
    "biology": 717,
    "business": 789,
    "chemistry": 1132,
    "computer science": 410,
    "economics": 844,
    "engineering": 969,
    "health": 818,
    "history": 381,
    "law": 1101,
    "math": 1351,
    "other": 924,
    "philosophy": 499,
    "physics": 1299,
    "psychology": 798,
}
MMLU_PRO_SCHEMA = pa.schema(
    [
        ("question_id", pa.int64()),
        ("question", pa.string()),
        ("options", pa.list_(pa.string())),
        ("answer", pa.string()),
        ("answer_index", pa.int64()),
        ("cot_content", pa.string()),
        ("category", pa.string()),
        ("src", pa.string()),
    ]
)
MMLU_PRO_FROM_MMLU = {
    "health": (
        "clinical_knowledge",
        "college_medicine",
        "professional_medicine",
        "anatomy",
        "medical_genetics",
    ),
    "biology": ("college_biology", "high_school_biology"),
    "psychology": ("high_school_psychology", "professional_psychology"),
}


def build_mmlu_pro(root: Path, scale: float, mmlu_test: Rows) -> dict[str, int]:
    """TIGER-Lab/MMLU-Pro: data/{test,validation} parquet; part of it is MMLU re-optioned."""
    w = Writer("mmlu_pro", "en")
    rows: dict[str, Rows] = {"validation": [], "test": []}
    qid = 0
    for category, test in MMLU_PRO_TEST.items():
        for split, n in (("validation", 5), ("test", scaled(test, scale))):
            from_mmlu = [
                r for r in mmlu_test if r["subject"] in MMLU_PRO_FROM_MMLU.get(category, ())
            ]
            for i in range(n):
                row = _mmlu_pro_row(w, qid, category)
                if split == "test" and i < len(from_mmlu) and i % 3 == 0:  # MMLU items, re-optioned
                    origin = from_mmlu[i]
                    row["question"] = origin["question"]
                    row["src"] = f"ori_mmlu-{origin['subject']}"
                rows[split].append(row)
                qid += 1
    if len(rows["test"]) >= SMALL:  # an answer letter that disagrees with its index
        rows["test"][5]["answer_index"] = (rows["test"][5]["answer_index"] + 1) % 4
    for split, split_rows in rows.items():
        write_parquet(
            root / "data" / f"{split}-00000-of-00001.parquet", split_rows, MMLU_PRO_SCHEMA
        )
    card(root, "TIGER-Lab/MMLU-Pro")
    return {s: len(r) for s, r in rows.items()}


def _mmlu_pro_row(w: Writer, qid: int, category: str) -> dict[str, Any]:
    n = 10 if w.rng.random() < 0.83 else w.rng.randint(4, 9)  # some items have fewer options
    index = w.rng.randrange(n)
    return {
        "question_id": qid,
        "question": w.question(420),
        "options": w.options(n, 5),
        "answer": "ABCDEFGHIJ"[index],
        "answer_index": index,
        "cot_content": "",
        "category": category,
        "src": f"stemez-{category}",
    }


# ------------------------------------------------------------------ French corpora (synthesis)

DIAMED_COUNTS = {"train": 517, "validation": 74, "test": 148}
MORFITT_COUNTS = {"train": 1514, "dev": 1022, "test": 1088}
DEFT_COUNT = 275


def build_diamed(root: Path, scale: float) -> dict[str, int]:
    """Dr-BERT/DiaMED: data.zip with splits/*.json arrays and figures."""
    w = Writer("diamed", "fr")
    members: dict[str, bytes] = {}
    counts = {}
    for split, n in DIAMED_COUNTS.items():
        rows = [
            {
                "identifier": f"diamed-{split}-{i:04d}",
                "title": w.sentence(8),
                "clinical_case": w.text(2500),
                "topic": w.words_text(2),
                "keywords": w.words_text(4).split(),
                "domain": [w.rng.choice(SUBJECTS_FR)],
                "collected_at": "2023-01-01",
                "published_at": "2019-05-01",
                "source_url": "https://example.org/case",
                "source_name": "stand-in",
                "license": "CC BY 4.0",
                "figures": [],
                "local_figures": [],
                "icd-10": "I00-I99  Diseases of the circulatory system",
            }
            for i in range(scaled(n, scale))
        ]
        rows[0]["clinical_case"] = ""  # an empty case (skipped with a warning)
        members[f"splits/{split}.json"] = json.dumps(rows, ensure_ascii=False).encode()
        counts[split] = len(rows)
    members["figures/diamed-train-0000-1.png"] = b"\x89PNG\r\n"
    write_bytes(root / "data.zip", zip_bytes(members))
    write_text(root / "DiaMED.py", "# loading script (stand-in): reads data.zip\n")
    card(root, "Dr-BERT/DiaMED")
    return counts


def build_morfitt(root: Path, scale: float) -> dict[str, int]:
    """qanastek/MORFITT: data.zip with train/dev/test TSV."""
    w = Writer("morfitt", "fr")
    members = {}
    counts = {}
    for split, n in MORFITT_COUNTS.items():
        lines = ["identifier\tabstract\tspecialities"]
        for i in range(scaled(n, scale)):
            labels = "|".join(sorted(w.rng.sample(MORFITT_LABELS, w.rng.randint(1, 2))))
            lines.append(f"{w.hexid('morfitt', split, i)}\t {w.text(1120)}\t{labels}")
        members[f"{split}.tsv"] = ("\n".join(lines) + "\n").encode()
        counts[split] = len(lines) - 1
    write_bytes(root / "data.zip", zip_bytes(members))
    write_text(root / "MORFITT.py", "# loading script (stand-in): reads data.zip\n")
    card(root, "qanastek/MORFITT")
    return counts


def build_deft2021(root: Path, scale: float) -> dict[str, int]:
    """DEFT-2021 (local, on request): one .txt clinical case per file, with its .ann beside it."""
    w = Writer("deft2021", "fr")
    n = scaled(DEFT_COUNT, scale)
    for i in range(n):
        folder = "train" if i < n * 0.6 else "test"
        write_text(root / folder / f"cas-{i:04d}.txt", w.text(2000) + "\n")
        write_text(root / folder / f"cas-{i:04d}.ann", "T1\tpathologie 0 10\tstand-in\n")
    return {"documents": n}


# ------------------------------------------------------------------ other local files

S_EDITIONS_COUNT = 526


def build_s_editions(root: Path, scale: float) -> dict[str, int]:
    """S-Editions export (local; the project's documented JSON Lines form)."""
    w = Writer("s_editions", "fr")
    rows = []
    for i in range(scaled(S_EDITIONS_COUNT, scale)):
        row: dict[str, Any] = {
            "id": f"se-{i:04d}",
            "question": w.question(150),
            "specialty": w.rng.choice(SUBJECTS_FR),
        }
        if w.rng.random() < 0.5:
            row |= {
                "options": dict(zip("ABCDE", w.options(5, 4), strict=True)),
                "answer": ", ".join(sorted(w.rng.sample(LETTERS5, w.rng.randint(1, 2)))),
            }
        else:
            row |= {"options": None, "answer": w.text(250)}
        rows.append(row)
    if len(rows) >= SMALL:
        rows[1]["options"] = {}  # an empty option dict (quarantined)
        rows.append(dict(rows[2]))  # a repeated export line (same id)
    write_text(root / "s_editions.jsonl", jsonl(rows))
    return {"items": len(rows)}


def build_wmt24(path: Path, scale: float) -> dict[str, int]:
    """WMT24 biomedical EN->FR test file (local, {id, en, fr})."""
    en, fr = Writer("wmt24-en", "en"), Writer("wmt24-fr", "fr")
    rows = [
        {"id": f"wmt24-{i:04d}", "en": en.text(180), "fr": fr.text(200)}
        for i in range(scaled(600, scale, 20))
    ]
    write_text(path, jsonl(rows))
    return {"segments": len(rows)}


ANNOTATED = 100  # the authors' physician-annotated pairs
ANNOTATED_MINIMUM = 20  # below full scale: each candidate judge still meets both labels


def build_annotations(path: Path, scale: float = 1.0) -> dict[str, int]:
    """The physician annotations in the authors' comparison file form (a JSON array, 100 items;
    below full scale fewer, at least 20 with at least POOL_MINIMUM of each label)."""
    w = Writer("annotations", "fr")
    rows = [
        {
            "id": 228402061 + i,
            "Question": w.question(150),
            "verite_terrain": w.text(200),
            "Qwen_4B_it_big_combo": w.text(300),
            "equivalence": "Oui" if w.rng.random() < 0.15 else "Non",
            "preference": w.rng.choice(("Vérité terrain", "Réponse générée")),
        }
        for i in range(scaled(ANNOTATED, scale, ANNOTATED_MINIMUM))
    ]
    if scale < 1.0:  # labels turned over in order (no randomness) to keep both present
        for label, other in (("Oui", "Non"), ("Non", "Oui")):
            short = POOL_MINIMUM - sum(row["equivalence"] == label for row in rows)
            for row in [row for row in rows if row["equivalence"] == other][: max(0, short)]:
                row["equivalence"] = label
    write_text(path, json.dumps(rows, ensure_ascii=False, indent=1))
    return {"items": len(rows)}


# ------------------------------------------------------------------ released MedInjection-FR data

# Per-task split counts: the origins' totals are the README's (study.md §1.1); the task breakdown
# follows config/published.yaml's plan.source_sizes (native mcq vs mcqu train: inferred halves)
RELEASED: dict[str, dict[str, dict[str, int]]] = {
    "native": {"Train": {"mcq": 18655, "mcqu": 18654, "oeq": 20254},
               "Validation": {"mcqu": 3939, "oeq": 1116},
               "Test": {"mcqu": 4672, "oeq": 9957}},
    "translated": {"Train": {"mcqu": 366370}, "Validation": {"mcqu": 38011},
                   "Test": {"mcqu": 13293}},
    "synthetic": {"Train": {"mcq": 33493, "oeq": 43013}},
}  # fmt: skip
RELEASED_SUFFIX = {"Train": "train", "Validation": "val", "Test": "test"}
RELEASED_REPOS = {"MedInjection-FR/Native": "native", "MedInjection-FR/Translated": "translated",
                  "MedInjection-FR/Synthetic": "synthetic"}  # fmt: skip
LAYOUTS |= {
    "MedInjection-FR/Native": "card/commits: Train/{mcq,mcqu,oeq}/<task>_train.json, Validation/"
    "{mcqu,oeq}/<task>_val.json, Test/{mcqu,oeq}/<task>_test.json; item fields (messages, classes, "
    "answer) inferred from the authors' Evaluate.py",
    "MedInjection-FR/Translated": "commit 337d192: {Train,Validation,Test}/mcqu/mcqu_<split>.json",
    "MedInjection-FR/Synthetic": "commits: Train/{mcq,oeq}/<task>_training.json",
}


def build_released(root: Path, scale: float, origin: str) -> dict[str, int]:
    """A released MedInjection-FR repository: JSON lists of chat items per split and task."""
    w = Writer(f"released-{origin}", "fr")
    counts = {}
    for split, tasks in RELEASED[origin].items():
        for task, n in tasks.items():
            suffix = "training" if origin == "synthetic" else RELEASED_SUFFIX[split]
            items = [_released_item(w, task) for _ in range(scaled(n, scale))]
            if split == "Train" and len(items) >= SMALL:
                for i in w.pick(range(len(items)), DUPLICATE_RATE, 1):
                    items.append(dict(items[i]))  # the same item twice
                for i in w.pick(range(len(items)), MALFORMED_RATE, 1):
                    items[i] = {k: v for k, v in items[i].items() if k != "answer"}
            path = root / split / task / f"{task}_{suffix}.json"
            write_text(path, json.dumps(items, ensure_ascii=False))
            counts[f"{split}/{task}"] = len(items)
    card(root, next(repo for repo, o in RELEASED_REPOS.items() if o == origin))
    return counts


def _released_item(w: Writer, task: str) -> dict[str, Any]:
    question = w.question(300)
    if task == "oeq":
        answer = w.text(300)
        return {"messages": [{"role": "user", "content": question},
                             {"role": "assistant", "content": answer}]}  # fmt: skip
    options = w.options(5, 5)
    k = 1 if task == "mcqu" else w.rng.randint(2, 3)
    letters = sorted(w.rng.sample(LETTERS5, k))
    lines = "\n".join(f"({x}) {t}" for x, t in zip(LETTERS5, options, strict=True))
    prompt = f"{question}\nChoix de réponses :\n{lines}"
    gold = ", ".join(letters)
    return {"messages": [{"role": "user", "content": prompt},
                         {"role": "assistant", "content": gold}],
            "classes": list(LETTERS5), "answer": gold}  # fmt: skip
