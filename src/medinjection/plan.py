"""Pre-spend feasibility: what every mixture and test set will draw from, before any API call.

`python -m medinjection.plan --configfile config/config.yaml [--root .] [--out plan.md]`

The Snakefile runs `check_plan` while it builds the DAG (so `snakemake -n` runs it too): a draw
that cannot succeed stops the workflow before translation, synthesis or training spends anything,
naming the mixture or test set and the config key to change.

Expected pool of (origin, source, task, split), per source:
- built: the source's records already exist (results/normalized/<source>/records.parquet, or
  results/translated|synthetic/<source>/records.parquet): their counts;
- declared: plan.source_sizes.<source> gives the published size per task and split (a split
  `hash` is spread over train/validation/test by dataset.validation_fraction/test_fraction,
  `hash_train_validation` over train/validation), for a translate source times
  plan.translation_yield;
- synthesis: documents (results/normalized/<corpus>/documents.parquet, else
  llm.estimate.volumes.<corpus>.items) x synthesis.mcq_per_document (MCQ, task group
  "mcq|mcqu": the generator decides single or multiple answers) or x sum(synthesis.task_types)
  (oeq), times plan.synthesis_yield; all train.
Then each origin's pools lose plan.dedup_loss.<origin> (exact/near dedup and test
decontamination in build_dataset; 0 when dataset.deduplicate is false). A task group
"a|b" counts toward a draw only when the draw takes every task of the group.
Draws: each mixture's train records per origin (mixtures.size split by its shares), the
validation set (shared or per mixture) and each test set (at least one record).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from medinjection.mixtures import allocate

ROLE_ORIGIN = {"native": "native", "translate": "translated", "synthesize": "synthetic"}
SPLITS = ("train", "validation", "test")
PoolKey = tuple[str, str, str, str]  # origin, source, task (or "a|b" group), split


class InfeasiblePlan(ValueError):
    """A mixture or test set whose draw cannot succeed with the expected pools."""


@dataclass(frozen=True)
class Draw:
    """One draw the workflow will make, the pool it draws from and the margin."""

    what: str
    origin: str
    tasks: tuple[str, ...]
    split: str
    required: int
    expected: float
    basis: str
    fix: str  # the config key(s) to change when the draw fails

    @property
    def margin(self) -> float:
        """(expected - required) / required; +inf when nothing is required."""
        return (self.expected - self.required) / self.required if self.required else math.inf

    @property
    def ok(self) -> bool:
        """True when the expected pool covers the draw."""
        return math.floor(self.expected) >= self.required


def _settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("plan") or {}


def _hash_spread(n: float, rule: str, dataset: Mapping[str, Any]) -> dict[str, float]:
    val, test = float(dataset["validation_fraction"]), float(dataset["test_fraction"])
    if rule == "hash":
        return {"train": n * (1 - val - test), "validation": n * val, "test": n * test}
    if rule == "hash_train_validation":
        return {"train": n * (1 - val), "validation": n * val}
    return {rule: n}


def _count_records(path: Path) -> dict[tuple[str, str], int]:
    import pyarrow.parquet as pq  # parse time only reads two columns of a built file

    table = pq.read_table(path, columns=["task", "split"])
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for task, split in zip(table["task"].to_pylist(), table["split"].to_pylist(), strict=True):
        counts[(task, split)] += 1
    return counts


def _sources(config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Source name -> (origin, role) of what the data stage builds."""
    data = config.get("data", {})
    if data.get("build") == "published":
        return {f"medinjection_{o}": (o, "published") for o in data.get("published", {})}
    return {name: (ROLE_ORIGIN[s["role"]], s["role"]) for name, s in config["sources"].items()}


def _declared(config: Mapping[str, Any], source: str) -> Mapping[str, Any] | None:
    return (_settings(config).get("source_sizes") or {}).get(source)


def _qa_pools(
    config: Mapping[str, Any], source: str, origin: str, role: str, root: Path
) -> tuple[dict[tuple[str, str], float], str]:
    built = {
        "translate": root / "results" / "translated" / source / "records.parquet",
        "published": root / "results" / "published" / origin / "records.parquet",
    }.get(role)
    if built is not None and built.is_file():
        return {k: float(v) for k, v in _count_records(built).items()}, "built"
    factor = float(_settings(config).get("translation_yield", 1.0)) if role == "translate" else 1.0
    normalized = root / "results" / "normalized" / source / "records.parquet"
    if role != "published" and normalized.is_file():
        counts = _count_records(normalized)
        return {
            k: v * factor for k, v in counts.items()
        }, "built" if factor == 1 else "built x yield"
    sizes = _declared(config, source)
    if sizes is None:
        return {}, "unknown"
    pools: dict[tuple[str, str], float] = defaultdict(float)
    for task, splits in sizes.items():
        for split_rule, n in splits.items():
            for split, part in _hash_spread(float(n), split_rule, config["dataset"]).items():
                pools[(task, split)] += part * factor
    return dict(pools), "declared" if factor == 1 else "declared x yield"


def _synthetic_pools(
    config: Mapping[str, Any], source: str, root: Path
) -> tuple[dict[tuple[str, str], float], str]:
    built = root / "results" / "synthetic" / source / "records.parquet"
    if built.is_file():
        return {k: float(v) for k, v in _count_records(built).items()}, "built"
    documents_file = root / "results" / "normalized" / source / "documents.parquet"
    if documents_file.is_file():
        import pyarrow.parquet as pq

        documents, basis = float(pq.read_metadata(documents_file).num_rows), "documents"
    else:
        volume = config["llm"]["estimate"]["volumes"].get(source)
        if volume is None:
            return {}, "unknown"
        documents, basis = float(volume["items"]), "llm.estimate.volumes"
    synthesis = config["synthesis"]
    rate = float(_settings(config).get("synthesis_yield", 1.0))
    mcq = documents * int(synthesis["mcq_per_document"]) * rate
    oeq = documents * sum(int(n) for n in synthesis["task_types"].values()) * rate
    return {("mcq|mcqu", "train"): mcq, ("oeq", "train"): oeq}, f"{basis} x per-document x yield"


def expected_pools(config: Mapping[str, Any], root: Path) -> tuple[dict[PoolKey, float], dict]:
    """Expected records per (origin, source, task, split) after losses, and each source's basis."""
    loss = _settings(config).get("dedup_loss") or {}
    dedup = config["dataset"].get("deduplicate", True)
    pools: dict[PoolKey, float] = {}
    bases: dict[str, str] = {}
    for source, (origin, role) in _sources(config).items():
        if role == "synthesize":
            counts, basis = _synthetic_pools(config, source, root)
        else:
            counts, basis = _qa_pools(config, source, origin, role, root)
        kept = 1.0 - float(loss.get(origin, 0.0)) if dedup else 1.0
        for (task, split), n in counts.items():
            pools[(origin, source, task, split)] = n * kept
        bases[source] = basis
    return pools, bases


def _pool(pools: Mapping[PoolKey, float], origin: str, tasks: list[str], split: str) -> float:
    return sum(
        n
        for (o, _s, task, sp), n in pools.items()
        if o == origin and sp == split and set(task.split("|")) <= set(tasks)
    )


def _basis(bases: Mapping[str, str], config: Mapping[str, Any], origin: str) -> str:
    """The bases of an origin's sources, e.g. 'declared x yield (8 sources)'."""
    by_basis: dict[str, list[str]] = defaultdict(list)
    for source, (o, _role) in _sources(config).items():
        if o == origin:
            by_basis[bases.get(source, "unknown")].append(source)
    parts = [
        f"{basis} ({', '.join(names)})" if basis == "unknown" or len(by_basis) > 1 else basis
        for basis, names in sorted(by_basis.items())
    ]
    return "; ".join(parts) or "no source"


def plan_draws(config: Mapping[str, Any], root: Path = Path(".")) -> list[Draw]:
    """Every draw of the mixtures, the validation set(s) and the test sets, with its pool."""
    pools, bases = expected_pools(config, root)
    mixtures = config["mixtures"]
    tasks = list(mixtures["tasks"])
    draws = []
    for name, shares in mixtures["definitions"].items():
        counts = allocate(int(mixtures["size"]), {o: float(w) for o, w in sorted(shares.items())})
        for origin, k in counts.items():
            fix = _fix(origin, config)
            draws.append(Draw(f"mixture {name} train", origin, tuple(tasks), "train", k,
                              _pool(pools, origin, tasks, "train"), _basis(bases, config, origin),
                              f"mixtures.definitions.{name} / mixtures.size{fix}"))  # fmt: skip
    shared = mixtures.get("validation_origins") or []
    if shared:
        counts = allocate(int(mixtures["validation_size"]), dict.fromkeys(sorted(shared), 1.0))
        for origin, k in counts.items():
            fix = "mixtures.validation_size / mixtures.validation_origins"
            draws.append(Draw("shared validation", origin, tuple(tasks), "validation", k,
                              _pool(pools, origin, tasks, "validation"),
                              _basis(bases, config, origin), fix))  # fmt: skip
    for name, spec in config["evaluation"]["test_sets"].items():
        expected = sum(
            n
            for (o, s, task, split), n in pools.items()
            if (o, s, split) == (spec["origin"], spec["source"], "test")
            and spec["task"] in task.split("|")
        )
        draws.append(Draw(f"test set {name}", spec["origin"], (spec["task"],), "test", 1,
                          expected, bases.get(spec["source"], "unknown"),
                          f"evaluation.test_sets.{name}"))  # fmt: skip
    return draws


def _fix(origin: str, config: Mapping[str, Any]) -> str:
    if config.get("data", {}).get("build") == "published":
        return f" (the release's {origin} records are all there is)"
    return {
        "synthetic": " / synthesis.mcq_per_document",
        "translated": " / plan.translation_yield",
    }.get(origin, "")


def check_plan(config: Mapping[str, Any], root: Path = Path(".")) -> list[Draw]:
    """The draws; raises InfeasiblePlan naming every draw that cannot succeed and its key."""
    draws = plan_draws(config, root)
    failed = [d for d in draws if not d.ok]
    if failed:
        lines = [
            f"{d.what}: needs {d.required:,} {d.origin} {'/'.join(d.tasks)} {d.split} records, "
            f"expected pool {math.floor(d.expected):,} ({d.basis}); change {d.fix}"
            for d in failed
        ]
        raise InfeasiblePlan(
            "the study cannot draw what it needs (checked before any API call or GPU job; "
            "`python -m medinjection.plan` prints the whole plan):\n  - " + "\n  - ".join(lines)
        )
    return draws


def render(draws: list[Draw]) -> str:
    """A Markdown table of every draw: pool, required, margin."""
    lines = ["| draw | origin | tasks | split | expected pool | required | margin | basis |",
             "|---|---|---|---|---:|---:|---:|---|"]  # fmt: skip
    for d in draws:
        if d.what.startswith("test set"):  # a test set only needs records to exist
            margin = f"{math.floor(d.expected) - d.required:+,} records"
        else:
            margin = "n/a" if math.isinf(d.margin) else f"{d.margin:+.1%}"
        flag = "" if d.ok else " **FAILS**"
        lines.append(f"| {d.what}{flag} | {d.origin} | {'/'.join(d.tasks)} | {d.split} | "
                     f"{math.floor(d.expected):,} | {d.required:,} | {margin} | "
                     f"{d.basis} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the plan; exit 1 when a draw cannot succeed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--root", type=Path, default=Path("."), help="where results/ would be")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text(encoding="utf-8"))
    draws = plan_draws(config, args.root)
    table = render(draws)
    print(f"feasibility plan for {args.configfile} (see `medinjection.plan` for the rules)\n")
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    failed = [d for d in draws if not d.ok]
    if failed:
        print(f"\n{len(failed)} draw(s) cannot succeed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
