"""Judge inputs the judge and fault tests share: a small OEQ test set and its predictions, and
candidate judge settings."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.records import Record, write_records
from medinjection.settings import JudgeCandidateSettings


def candidate(backend: str, model: str, **overrides: object) -> JudgeCandidateSettings:
    """A `judge.candidates.<name>` entry (endpoint `openai`, max_tokens 1 unless overridden)."""
    values = {"backend": backend, "model": model, "endpoint": "openai", "max_tokens": 1}
    return JudgeCandidateSettings.from_dict({**values, **overrides}, f"candidate {model}")


def write_oeq_inputs(tmp_path: Path) -> tuple[Path, Path]:
    records = [
        Record(id=f"mediqal:{i}", origin="native", source="mediqal", task="oeq", split="test",
               question=f"Quel est le diagnostic {i} ?", answer=f"Hépatite {i}")
        for i in range(3)
    ]  # fmt: skip
    testset = tmp_path / "testsets" / "mediqal-oeq.parquet"
    write_records(records, testset)
    rows = [
        {"id": r.id, "task": "oeq", "prompt_hash": "h", "letters": "", "gold": r.answer,
         "greedy_output": f"hépatite {k}" if k else None, "constrained_output": None,
         "letter_probs": None}
        for k, r in enumerate(records)
    ]  # fmt: skip
    predictions = tmp_path / "predict" / "mediqal-oeq.parquet"
    predictions.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), predictions)
    return predictions, testset
