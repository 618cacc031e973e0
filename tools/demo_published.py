"""Write the demo copy of the released MedInjection-FR layout (resources/demo/published/).

Our own tiny items in the released per-subset JSON form (study.md §1.6, §2): per origin,
<Split>/<task>/<task>_<split>.json lists of {"messages", "classes", "answer"}. Synthetic, like
the release, is train-only. Deterministic. Usage: python tools/demo_published.py [--root ROOT]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

SYSTEM = "Vous êtes un assistant médical. Répondez en français."
ORGANS = ["cœur", "foie", "rein", "poumon", "pancréas", "thyroïde", "rate", "estomac"]
ROLES = ["filtration du sang", "sécrétion d'insuline", "échanges gazeux", "pompe sanguine",
         "production de bile", "sécrétion hormonale", "immunité", "digestion"]  # fmt: skip
LAYOUT = {
    "native": {"Train": ["mcq", "mcqu", "oeq"], "Validation": ["mcqu", "oeq"], "Test": ["mcqu"]},
    "translated": {"Train": ["mcqu"], "Validation": ["mcqu"], "Test": ["mcqu"]},
    "synthetic": {"Train": ["mcq", "oeq"]},
}


def _item(origin: str, task: str, n: int) -> dict:
    organ = ORGANS[n % len(ORGANS)]
    letters = ["A", "B", "C", "D"]
    options = [ROLES[(n + k) % len(ROLES)] for k in range(4)]
    tag = f"({origin}, item {n})"
    if task == "oeq":
        user = f"Quel est le rôle principal de l'organe suivant : {organ} ? {tag}"
        gold = f"Il assure : {options[0]}."
        return {"messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": user},
                             {"role": "assistant", "content": gold}]}  # fmt: skip
    stem = "Quelles fonctions" if task == "mcq" else "Quelle fonction"
    lines = "\n".join(f"({letter}) {text}" for letter, text in zip(letters, options, strict=True))
    user = f"{stem} associer à l'organe suivant : {organ} ? {tag}\nChoix de réponses :\n{lines}"
    answer = "A, C" if task == "mcq" else "A"
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}],
            "classes": letters, "answer": answer}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Write every origin's folder."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    base = args.root / "resources" / "demo" / "published"
    n = 0
    for origin, splits in LAYOUT.items():
        if (base / origin).exists():
            shutil.rmtree(base / origin)
        for split, tasks in splits.items():
            for task in tasks:
                items = []
                for _ in range(40 if split == "Train" else 8):
                    items.append(_item(origin, task, n))
                    n += 1
                path = base / origin / split / task / f"{task}_{split.lower()}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"wrote {n} items under {base}")


if __name__ == "__main__":
    main()
