"""Published MedInjection-FR counts, and our dataset's counts printed beside them.

Figures: the authors' GitHub README table (study.md §1.1). Translated total there is 416,401 in
the table but its splits add up to 417,674 (the header figure), which we use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

PUBLISHED_COUNTS: dict[tuple[str, str], int] = {
    ("native", "train"): 57_563,
    ("native", "validation"): 5_055,
    ("native", "test"): 14_629,
    ("translated", "train"): 366_370,
    ("translated", "validation"): 38_011,
    ("translated", "test"): 13_293,
    ("synthetic", "train"): 76_506,
    ("synthetic", "validation"): 0,
    ("synthetic", "test"): 0,
}

WHY_DIFFERENT: dict[str, str] = {
    "native": (
        "published native includes S-Editions (526, not public: only with sources.s_editions) "
        "and 8,983 items from sources its card does not name; FrBMedQA was subsampled to 19,836 "
        "by a rule that is not public; our exact/near dedup and decontamination remove more"
    ),
    "translated": (
        "the published source list and per-source counts are not public (study.md 1.5): our "
        "MMLU/MMLU-Pro subject filters, PubMedQA subset (+ its long-answer OEQ) and MedXpertQA "
        "are our choices; counts also move with translation failures and our dedup"
    ),
    "synthetic": (
        "ours = documents x (synthesis.mcq_per_document + task_types) minus failed or "
        "quarantined generations; the authors' per-document counts and filters are not public"
    ),
}


def comparison_rows(counts: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows origin, split, ours, published, difference, why from stats rows (o, s, t, split, n)."""
    ours: Counter[tuple[str, str]] = Counter()
    for origin, _source, _task, split, n in counts:
        ours[(str(origin), str(split))] += int(str(n))
    rows: list[list[object]] = []
    for origin in ("native", "translated", "synthetic"):
        for split in ("train", "validation", "test", "total"):
            if split == "total":
                mine = sum(v for (o, _), v in ours.items() if o == origin)
                theirs = sum(v for (o, _), v in PUBLISHED_COUNTS.items() if o == origin)
            else:
                mine, theirs = ours[(origin, split)], PUBLISHED_COUNTS[(origin, split)]
            rows.append([origin, split, mine, theirs, mine - theirs, WHY_DIFFERENT[origin]])
    total_ours = sum(ours.values())
    total_published = sum(PUBLISHED_COUNTS.values())
    rows.append(
        [
            "all",
            "total",
            total_ours,
            total_published,
            total_ours - total_published,
            "sum of the above (the published grand total 571,436 is 9 more than its parts)",
        ]
    )
    return rows
