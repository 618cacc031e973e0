"""Time the data path at full study scale: normalize -> merge -> dedup -> decontaminate -> mixtures.

A synthetic corpus with realistic text lengths is written in the sources' raw formats (native:
MediQAl parquet, 77,247 rows over mcqu/mcqm/oeq; translated: MedMCQA parquet, 417,674 English
rows; synthetic: 76,506 records as the synthesis stage writes them), with planted exact and near
duplicates and test leaks. The workflow's own functions then run on it as the workflow's jobs run
under `snakemake --cores 2`: each job in a fresh process, independent jobs two at a time
(normalize_source of the two sources, then a columnar EN->FR relabel standing in for
translation, then build_dataset, then build_mixture for the 7 study mixtures). Prints, per job,
wall and CPU seconds, records/s and peak RSS; per stage its wall; and the path's wall, CPU time and
peak memory beside the targets (60 s, 4 GB). `--jobs 1` runs every job one after the other.

Usage: python bench/data_pipeline.py [--scale 1.0] [--jobs 2] [--workdir /tmp/bench_data] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.settings import DatasetSettings, MixtureShares, MixturesSettings
from medinjection.stages.dataset import build_dataset
from medinjection.stages.mixtures import build_mixture
from medinjection.stages.sources import normalize_source

NATIVE, TRANSLATED, SYNTHETIC = 77_247, 417_674, 76_506
LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())
DATASET = DatasetSettings(
    split_seed=42,
    validation_fraction=0.1,
    test_fraction=0.1,
    max_quarantine_rate=0.05,
    near_duplicate_threshold=0.9,
)
MIXTURES = {
    "NAT": {"native": 1.0},
    "TRAD": {"translated": 1.0},
    "SYN": {"synthetic": 1.0},
    "NAT-TRAD": {"native": 1.0, "translated": 1.0},
    "NAT-SYN": {"native": 1.0, "synthetic": 1.0},
    "TRAD-SYN": {"translated": 1.0, "synthetic": 1.0},
    "ALL": {"native": 1.0, "translated": 1.0, "synthetic": 1.0},
}
OPTION_KEYS = ("opa", "opb", "opc", "opd")
SYLLABLES = "ba be bi bo cu da de di do fa fé fi ga gè go la le li lo ma me mi mo na né ni no pa "
SYLLABLES += "pé pi po ra re ri ro sa sé si so ta té ti to va vé vi xa za ch tr pl gr an on in ur"


class TextFactory:
    """Random French-looking text of lognormal word counts (median words, spread sigma)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        syl = np.array(SYLLABLES.split())
        picks = self.rng.integers(0, syl.size, (40_000, 4))
        lengths = self.rng.integers(1, 5, 40_000)
        self.vocab = np.array(["".join(syl[p[:n]]) for p, n in zip(picks, lengths, strict=True)])

    def texts(self, n: int, median_words: float, sigma: float = 0.6) -> list[str]:
        """n texts."""
        counts = np.clip(self.rng.lognormal(np.log(median_words), sigma, n), 3, 600).astype(int)
        words = self.vocab[self.rng.integers(0, self.vocab.size, counts.sum())]
        bounds = np.r_[0, np.cumsum(counts)]
        return [" ".join(words[bounds[i] : bounds[i + 1]]) + " ?" for i in range(n)]


def plant_duplicates(table: dict[str, list], columns: list[str], rng: np.random.Generator,
                     share: float) -> None:  # fmt: skip
    """Turn a share of the rows into exact (re-cased) or near (one word changed) copies."""
    n = len(table["question"])
    targets = rng.choice(n, int(n * share), replace=False)
    for k, i in enumerate(targets):
        j = int(rng.integers(0, n))
        for column in columns:
            table[column][i] = table[column][j]
        words = table["question"][j].split()
        if k % 2:
            table["question"][i] = " ".join(words).upper()
        else:
            words[len(words) // 2] = "xyz"
            table["question"][i] = " ".join(words)


def write_native(folder: Path, n: int, text: TextFactory) -> None:
    """MediQAl raw parquet: mcqu/mcqm/oeq configs with the card's split proportions."""
    shares = {
        ("mcqu", "train"): 10113,
        ("mcqu", "validation"): 2561,
        ("mcqu", "test"): 4343,
        ("mcqm", "train"): 5767,
        ("mcqm", "validation"): 1466,
        ("mcqm", "test"): 3384,
        ("oeq", "test"): 4969,
    }
    total = sum(shares.values())
    for (config, split), share in shares.items():
        rows = max(1, round(n * share / total))
        questions = text.texts(rows, 25)
        cases = text.texts(rows, 150)
        has_case = text.rng.random(rows) < 0.4
        table = {
            "id": [f"{config}-{split}-{i}" for i in range(rows)],
            "clinical_case": [c if h else None for c, h in zip(cases, has_case, strict=True)],
            "question": questions,
            "medical_subject": ["cardiologie"] * rows,
            "question_type": ["QCM"] * rows,
        }
        if config == "oeq":
            table["answer"] = text.texts(rows, 50)
        else:
            for letter in "abcde":
                table[f"answer_{letter}"] = text.texts(rows, 8)
            multi = config == "mcqm"
            table["correct_answers"] = ["A,C" if multi else "B"] * rows
        options = [f"answer_{x}" for x in "abcde" if config != "oeq"]
        plant_duplicates(table, ["clinical_case", *options], text.rng, 0.02)
        path = folder / config / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(table), path)


def write_translated(folder: Path, n: int, text: TextFactory) -> None:
    """MedMCQA raw parquet (English): 96% train, 4% dev (our test); 20% long MedQA-like stems.

    2% of each split are planted duplicates, and 0.5% of train rows copy a dev row (test leaks).
    """
    n_dev = n * 4 // 100
    tables = {}
    for split, rows in (("train", n - n_dev), ("validation", n_dev)):
        questions = text.texts(rows, 18)
        long = text.rng.random(rows) < 0.2
        long_q = text.texts(int(long.sum()), 120)
        for i, q in zip(np.flatnonzero(long), long_q, strict=True):
            questions[i] = q
        tables[split] = {
            "id": [f"{split}-{i:07d}" for i in range(rows)],
            "question": questions,
            **{key: text.texts(rows, 3) for key in OPTION_KEYS},
            "cop": text.rng.integers(0, 4, rows).tolist(),
            "choice_type": ["single"] * rows,
            "exp": text.texts(rows, 40),
            "subject_name": ["Medicine"] * rows,
            "topic_name": [None] * rows,
        }
        plant_duplicates(tables[split], list(OPTION_KEYS), text.rng, 0.02)
    train, dev = tables["train"], tables["validation"]
    for i in text.rng.choice(n - n_dev, (n - n_dev) // 200, replace=False):
        j = int(text.rng.integers(0, n_dev))
        for key in ("question", *OPTION_KEYS):
            train[key][i] = dev[key][j]
    for split, table in tables.items():
        path = folder / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(table), path)


def write_synthetic(path: Path, n: int, text: TextFactory) -> None:
    """Records as the synthesis stage writes them: MCQ, then OEQ on documents.

    The published split is 33,493 MCQ (exactly the mixture size, leaving SYN no validation
    records and no room for dedup losses: the workflow stops there with counts, as it should),
    so the bench uses 36,500 MCQ + 40,006 OEQ to keep the same total and let SYN be drawn.
    """
    from medinjection.records import Record, write_records

    n_mcq = n * 36_500 // 76_506
    questions = text.texts(n, 30)
    docs, answers, options = text.texts(n, 180), text.texts(n, 60), text.texts(n * 5, 8)
    records = [
        Record(
            id=f"synthetic_src:{i:06d}",
            origin="synthetic",
            source="synthetic_src",
            task="mcq" if i < n_mcq else "oeq",
            split="train",
            question=questions[i],
            answer="A,C" if i < n_mcq else answers[i],
            options=tuple(zip("ABCDE", options[5 * i : 5 * i + 5], strict=True))
            if i < n_mcq
            else None,
            context=None if i < n_mcq else docs[i],
            meta={"task_type": "factual_qa", "generator": "gpt-4o"},
        )
        for i in range(n)
    ]
    write_records(records, path)


def relabel_french(src: Path, dst: Path) -> None:
    """Stand-in for translation: the same records marked French (columnar, no LLM)."""
    table = pq.read_table(src)
    column = pa.array(["fr"] * table.num_rows, type=pa.string())
    table = table.set_column(table.schema.get_field_index("language"), "language", column)
    pq.write_table(table, dst)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


@dataclass(frozen=True)
class Phase:
    """One job of the path as Snakemake runs it: its own process, wall and CPU seconds, peak RSS."""

    label: str
    wall_s: float
    cpu_s: float
    peak_gb: float
    records: int


def _job(label: str, records: int, fn: Callable[..., object], *args: object) -> Phase:
    """Run one job in this (fresh) process and measure it."""
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return Phase(label, time.perf_counter() - start, time.process_time() - cpu, peak_rss_gb(),
                 records)  # fmt: skip


def _stage(jobs: list[tuple], workers: int) -> tuple[list[Phase], float]:
    """Run independent jobs `workers` at a time, one fresh process each (as `--cores 2` does)."""
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        phases = list(pool.map(_job, *zip(*jobs, strict=False)))
    for phase in phases:
        print(f"  {phase.label:<38} {phase.wall_s:7.1f} s  cpu {phase.cpu_s:6.1f} s  "
              f"peak RSS {phase.peak_gb:.2f} GB", flush=True)  # fmt: skip
    return phases, time.perf_counter() - start


def _normalize(name: str, adapter: str, role: str, raw: Path, out: Path) -> Path:
    normalize_source(
        name, adapter, role, raw, out / "records.parquet", out / "q.jsonl", out / "s.json", DATASET
    )  # fmt: skip
    return out / "records.parquet"


def _mixture(work: Path, name: str, shares: dict[str, float], size: int, validation: int) -> None:
    data, mix = work / "dataset", work / "mix" / name
    mixtures = MixturesSettings(
        size=size, validation_size=validation, seed=42, tasks=("mcq", "mcqu"),
        definitions={name: MixtureShares(**shares)},
    )  # fmt: skip
    build_mixture(
        name, mixtures, "v1",
        [data / o / "train.parquet" for o in ("native", "translated", "synthetic")],
        [data / o / "validation.parquet" for o in ("native", "translated", "synthetic")],
        mix / "train.jsonl", mix / "validation.jsonl", mix / "manifest.json",
    )  # fmt: skip


def run(work: Path, scale: float, workers: int) -> list[tuple[str, list[Phase], float]]:
    """Run the path stage by stage, each stage's independent jobs in parallel; per-stage walls."""
    n_nat, n_trad, n_syn = (int(x * scale) for x in (NATIVE, TRANSLATED, SYNTHETIC))
    native, english = work / "norm/mediqal/records.parquet", work / "norm/medmcqa/records.parquet"
    french, data = work / "translated.parquet", work / "dataset"
    stages: list[tuple[str, list[tuple]]] = [
        ("normalize", [
            ("normalize native (MediQAl adapter)", n_nat, _normalize, "mediqal", "mediqal",
             "native", work / "raw/mediqal", native.parent),
            ("normalize translated (MedMCQA adapter)", n_trad, _normalize, "medmcqa", "medmcqa",
             "translate", work / "raw/medmcqa", english.parent),
        ]),
        ("[stand-in for translation]", [
            ("[stand-in for translation: relabel]", n_trad, relabel_french, english, french),
        ]),
        ("merge + dedup + decontaminate", [
            ("merge + dedup + decontaminate + write", n_nat + n_trad + n_syn, build_dataset,
             [native], [french], [work / "synthetic.parquet"], data, DATASET),
        ]),
        ("7 mixtures", [
            (f"mixture {name}", min(33_493, int(33_493 * scale)), _mixture, work, name, shares,
             min(33_493, int(33_493 * scale)), int(2000 * scale))
            for name, shares in MIXTURES.items()
        ]),
    ]  # fmt: skip
    done = []
    for name, jobs in stages:
        phases, wall = _stage(jobs, workers)
        done.append((name, phases, wall))
    removed = sum(1 for _ in (data / "removed.csv").open()) - 1
    print(f"  removed by dedup/decontamination: {removed}")
    manifest = json.loads((work / "mix" / "ALL" / "manifest.json").read_text())
    print(f"  ALL mixture counts: {json.dumps(manifest['counts'])}")
    return done


def main() -> None:
    """Generate the corpus, run the phases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_data_pipeline"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs, as snakemake --cores")
    parser.add_argument("--run-only", action="store_true", help="(internal) phases only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.run_only:
        report(args.workdir, args.scale, args.jobs)
        return
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    start = time.perf_counter()
    text = TextFactory(20260306)
    write_native(args.workdir / "raw/mediqal", int(NATIVE * args.scale), text)
    write_translated(args.workdir / "raw/medmcqa", int(TRANSLATED * args.scale), text)
    write_synthetic(args.workdir / "synthetic.parquet", int(SYNTHETIC * args.scale), text)
    raw_mb = sum(p.stat().st_size for p in args.workdir.rglob("*.parquet")) / 1e6
    print(f"corpus written in {time.perf_counter() - start:.1f} s ({raw_mb:.0f} MB parquet)")
    # a fresh process, so its peak RSS is the pipeline's own, not the generator's
    command = [sys.executable, __file__, "--run-only", "--workdir", str(args.workdir)]
    subprocess.run([*command, "--scale", str(args.scale), "--jobs", str(args.jobs)], check=True)
    if not args.keep:
        shutil.rmtree(args.workdir)


def report(work: Path, scale: float, workers: int) -> None:
    """Run the stages and print the table: per job, per stage, and the whole path."""
    stages = run(work, scale, workers)
    print(f"\n{'job':<40} {'wall s':>7} {'cpu s':>7} {'peak GB':>8} {'records':>8} {'rec/s':>8}")
    for _, phases, _ in stages:
        for p in phases:
            rate = p.records / max(p.wall_s, 1e-9)
            print(f"{p.label:<40} {p.wall_s:7.1f} {p.cpu_s:7.1f} {p.peak_gb:8.2f} "
                  f"{p.records:8d} {rate:8.0f}")  # fmt: skip
    path = [(name, wall) for name, _, wall in stages if not name.startswith("[")]
    print("\nstage walls (" + str(workers) + " jobs at a time): "
          + ", ".join(f"{name} {wall:.1f} s" for name, wall in path))  # fmt: skip
    cpu = sum(p.cpu_s for name, phases, _ in stages if not name.startswith("[") for p in phases)
    peak = max(p.peak_gb for _, phases, _ in stages for p in phases)
    pair = max(sum(sorted((p.peak_gb for p in ph), reverse=True)[:workers]) for _, ph, _ in stages)
    print(f"path wall (without the stand-in) {sum(w for _, w in path):.1f} s   target < 60 s")
    print(f"path CPU time, all jobs           {cpu:.1f} s")
    print(f"peak RSS: largest job {peak:.2f} GB, largest {workers} concurrent jobs {pair:.2f} GB"
          "   target < 4 GB")  # fmt: skip
    print(
        f"cores: {len(os.sched_getaffinity(0))}, load average before: {LOAD_BEFORE} "
        "(timings on a shared machine are noisy; CPU time is the steadier figure)"
    )


if __name__ == "__main__":
    main()
