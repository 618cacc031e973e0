"""MMLU (cais/mmlu) and MMLU-Pro (TIGER-Lab/MMLU-Pro): their medical subsets, in English.

MMLU raw form: HF parquet `<config>/<split>-*.parquet` with question, subject, choices (4 texts),
answer (int 0-3). The cais/mmlu snapshot (pinned c30699e, the commit that re-added
`all/auxiliary_train-*.parquet`; its dataset card lists the configs and their data_files) holds
one folder per subject (`anatomy/{dev,validation,test}-*.parquet`, ...), `all/` (the same rows
of every subject again, plus `all/auxiliary_train-*`) and `auxiliary_train/` (99,842 non-MMLU
training items, blank subject). The study stages only the medical subject folders
(sources.mmlu.location.files). This adapter reads per-subject folders when any is present and
then skips `all/` (it repeats their rows); with `all/` alone (e.g. the demo fixture) it reads
`all/` filtered by subject. Auxiliary-train files (`auxiliary_train/`, `all/auxiliary_train-*`)
are never MMLU subjects: skipped by name, logged. Kept subjects: MMLU_MEDICAL_SUBJECTS, the six
"MMLU medical" subsets of MultiMedQA (Singhal et al., 2023; 1,242 items: test 1,089, validation
123, dev 30); MedInjection-FR does not say which it used. Splits: dev (few-shot) -> train,
validation -> validation, test -> test. Ids: `<subject>-<split>-<n>`, n counting that subject's
rows of that split in file order (the same ids from a subject folder or from `all/`).

MMLU-Pro raw form: HF parquet `data/test-*.parquet`, `data/validation-*.parquet` with
question_id, question, options (up to 10 texts, fewer for some items), answer (letter),
answer_index (int), cot_content, category, src. Kept categories: MMLU_PRO_MEDICAL_CATEGORIES
(health, biology, psychology: the domains the Translated card names; unverified). Splits:
validation (few-shot) -> train, test -> test. A row whose answer letter and answer_index
disagree is quarantined.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import LETTERS, Record, Split
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    located_rows,
    options_from_texts,
    read_parquet_rows,
    require_files,
    split_of_file,
)

LOG = logging.getLogger(__name__)
MMLU_MEDICAL_SUBJECTS: frozenset[str] = frozenset(
    {
        "anatomy",
        "clinical_knowledge",
        "college_biology",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
    }
)
MMLU_PRO_MEDICAL_CATEGORIES: frozenset[str] = frozenset({"health", "biology", "psychology"})
MMLU_SPLITS: dict[str, Split] = {"dev": "train", "validation": "validation", "test": "test"}
MMLU_PRO_SPLITS: dict[str, Split] = {"validation": "train", "test": "test"}


AUXILIARY_TRAIN = "auxiliary_train"


def mmlu_files(raw_dir: Path, source: str) -> list[Path]:
    """The parquet files to read: medical subject folders, else `all/`; never auxiliary_train."""
    files = require_files(raw_dir, "**/*.parquet", source)
    auxiliary = [p for p in files if AUXILIARY_TRAIN in (p.parent.name, p.name.split("-")[0])]
    if auxiliary:
        LOG.info("%s: skips %d auxiliary_train file(s) (not MMLU subjects)", source, len(auxiliary))
    files = [p for p in files if p not in auxiliary]
    by_subject = [p for p in files if p.parent.name in MMLU_MEDICAL_SUBJECTS]
    if by_subject:
        skipped = [p for p in files if p not in by_subject]
        if skipped:
            LOG.info(
                "%s: reads the medical subject folders; skips %d other file(s) (all/ repeats "
                "the subject rows, other subjects are not medical)",
                source,
                len(skipped),
            )
        return by_subject
    in_all = [p for p in files if p.parent.name == "all"]
    if not in_all:
        raise FileNotFoundError(
            f"source {source!r}: no medical subject folder ({sorted(MMLU_MEDICAL_SUBJECTS)}) "
            f"and no all/ folder of parquet files under {raw_dir}; check "
            f"sources.{source}.location.files"
        )
    return in_all


def load_mmlu(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of the medical MMLU subjects."""
    for path in mmlu_files(raw_dir, source):
        split = split_of_file(path, MMLU_SPLITS, source)
        source_split = path.name.split("-")[0]
        seen: Counter[str] = Counter()
        rows = read_parquet_rows(path)
        kept = sum(row.get("subject") in MMLU_MEDICAL_SUBJECTS for row in rows)
        LOG.info("%s: %s keeps %d of %d rows (medical subjects)", source, path, kept, len(rows))
        for _, row in located_rows(path, rows):
            subject = row.get("subject")
            if subject not in MMLU_MEDICAL_SUBJECTS:
                continue
            raw_id = f"{subject}-{source_split}-{seen[subject]:05d}"
            seen[subject] += 1
            yield _mmlu_record(row, raw_id, split, source)


def _mmlu_record(row: dict[str, Any], raw_id: str, split: Split, source: str) -> RawResult:
    choices = row.get("choices")
    answer = row.get("answer")
    if not isinstance(choices, list):
        return Quarantined(raw_id, ("'choices' is not a list",), row)
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        return Quarantined(raw_id, (f"answer {answer!r} is not an index into choices",), row)
    return Record(
        id=f"{source}:{raw_id}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=clean(row.get("question")) or "",
        answer=LETTERS[answer],
        options=options_from_texts(choices),
        specialty=row["subject"],
        language="en",
        meta={"source_split": raw_id.split("-")[1], "split_rule": "source"},
    )


def load_mmlu_pro(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of the medical MMLU-Pro categories."""
    for path in require_files(raw_dir, "**/*.parquet", source):
        split = split_of_file(path, MMLU_PRO_SPLITS, source)
        rows = read_parquet_rows(path)
        kept = sum(row.get("category") in MMLU_PRO_MEDICAL_CATEGORIES for row in rows)
        LOG.info("%s: %s keeps %d of %d rows (medical categories)", source, path, kept, len(rows))
        for _, row in located_rows(path, rows):
            if row.get("category") not in MMLU_PRO_MEDICAL_CATEGORIES:
                continue
            yield _mmlu_pro_record(row, split, source, path.name.split("-")[0])


def _mmlu_pro_record(
    row: dict[str, Any], split: Split, source: str, source_split: str
) -> RawResult:
    raw_id = str(row.get("question_id"))
    options = row.get("options")
    letter = (clean(row.get("answer")) or "").upper()
    index = row.get("answer_index")
    if not isinstance(options, list):
        return Quarantined(raw_id, ("'options' is not a list",), row)
    if isinstance(index, int) and 0 <= index < len(LETTERS) and LETTERS[index] != letter:
        return Quarantined(raw_id, (f"answer {letter!r} disagrees with answer_index {index}",), row)
    return Record(
        id=f"{source}:{raw_id}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=clean(row.get("question")) or "",
        answer=letter,
        options=options_from_texts(options),
        specialty=clean(row.get("category")),
        language="en",
        meta={"source_split": source_split, "split_rule": "source", "src": row.get("src")},
    )
