"""Record builders and dataset settings that the data tests share (dedup, build_dataset, faults)."""

from __future__ import annotations

from medinjection.records import Record
from medinjection.settings import DatasetSettings

OPTIONS = (
    ("A", "Amoxicilline orale"),
    ("B", "Lévothyroxine"),
    ("C", "Colchicine"),
    ("D", "Insuline basal-bolus"),
)
# `dataset:` settings of the data tests: no hash split beyond 10 % / 10 %, dedup on
DATASET = DatasetSettings(
    split_seed=0,
    validation_fraction=0.1,
    test_fraction=0.1,
    max_quarantine_rate=0.1,
    near_duplicate_threshold=0.9,
)


def rec(rid: str, split: str = "train", question: str = "Quel traitement ?", **kw) -> Record:
    """An MCQU record of source `<rid before ':'>` with OPTIONS, answer A (fields overridable)."""
    fields = {
        "origin": "native",
        "source": rid.split(":")[0],
        "task": "mcqu",
        "answer": "A",
        "options": OPTIONS,
    } | kw
    return Record(id=rid, split=split, question=question, **fields)


def dataset_settings(
    split_seed: int, validation_fraction: float, test_fraction: float, max_quarantine_rate: float
) -> DatasetSettings:
    """`dataset:` settings with the keys normalize_source uses (the dedup keys: DATASET's)."""
    return DatasetSettings(
        split_seed=split_seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        max_quarantine_rate=max_quarantine_rate,
        near_duplicate_threshold=DATASET.near_duplicate_threshold,
    )
