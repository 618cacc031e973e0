"""The small test sets the prediction tests (transformers and vLLM backends) share."""

from __future__ import annotations

from medinjection.records import Record


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
