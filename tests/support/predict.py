"""The small test sets the prediction tests (transformers and vLLM backends) share."""

from __future__ import annotations

from medinjection.records import Record
from medinjection.settings import PredictionSettings


def mc_record(i: int, task: str, n_options: int, answer: str) -> Record:
    letters = "ABCDEFGHIJ"[:n_options]
    return Record(
        id=f"t:{task}{i}",
        origin="native",
        source="t",
        task=task,
        split="test",
        question=f"Question {i} : quelle est la conduite à tenir devant une fièvre ?",
        answer=answer,
        options=tuple((letter, f"proposition {letter} numéro {i}") for letter in letters),
    )


def predict_testsets() -> dict[str, list[Record]]:
    mcqu = [mc_record(i, "mcqu", 4 + i % 3, "ABCD"[i % 4]) for i in range(9)]
    mcq = [mc_record(i, "mcq", 5, "A,C") for i in range(5)]
    oeq = [
        Record(
            id=f"t:oeq{i}",
            origin="native",
            source="t",
            task="oeq",
            split="test",
            question=f"Pourquoi l'œdème {i} ?",
            answer="Insuffisance cardiaque.",
        )
        for i in range(3)
    ]
    return {"mcqu": mcqu, "mcq": mcq, "oeq": oeq}


def prediction(
    backend: str, batch_size: int, max_new_tokens_oeq: int, max_model_len: int | None = None
) -> PredictionSettings:
    """The `prediction:` block of a test's predict call (backend unchecked: tests pass bad ones)."""
    return PredictionSettings(
        backend=backend,  # type: ignore[arg-type]
        batch_size=batch_size,
        max_new_tokens_oeq=max_new_tokens_oeq,
        max_model_len=max_model_len,
    )
