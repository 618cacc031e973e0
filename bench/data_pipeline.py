"""Time the data path at full study scale: normalize -> merge -> dedup -> decontaminate -> mixtures.

A synthetic corpus with realistic text lengths is written in the sources' raw formats (native:
MediQAl parquet, 77,247 rows over mcqu/mcqm/oeq; translated: MedMCQA parquet, 417,674 English
rows; synthetic: 76,506 records as the synthesis stage writes them), with planted exact and near
duplicates and test leaks. The workflow's own functions then run on it, phase by phase
(normalize_source, a columnar EN->FR relabel standing in for translation, build_dataset, then
build_mixture for the 7 study mixtures). Prints wall time per phase, records/s, and the peak RSS
of the process beside the targets (60 s, 4 GB).

Usage: python bench/data_pipeline.py [--scale 1.0] [--workdir /tmp/bench_data] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.dataset import build_dataset
from medinjection.mixtures import build_mixture
from medinjection.normalize import normalize_source

NATIVE, TRANSLATED, SYNTHETIC = 77_247, 417_674, 76_506
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


def _normalize(name: str, adapter: str, role: str, raw: Path, out: Path) -> Path:
    normalize_source(
        name, adapter, role, raw, out / "records.parquet", out / "q.jsonl", out / "s.json",
        42, 0.1, 0.1, 0.05,
    )  # fmt: skip
    return out / "records.parquet"


def run(work: Path, scale: float) -> list[tuple[str, float, int]]:
    """Run every phase; (phase, seconds, records handled)."""
    phases: list[tuple[str, float, int]] = []

    def timed(label: str, count: int, fn, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = fn(*args)
        phases.append((label, time.perf_counter() - start, count))
        print(f"  {label:<38} {phases[-1][1]:7.1f} s   peak RSS {peak_rss_gb():.2f} GB", flush=True)
        return result

    n_nat, n_trad, n_syn = (int(x * scale) for x in (NATIVE, TRANSLATED, SYNTHETIC))
    native = timed("normalize native (MediQAl adapter)", n_nat, _normalize, "mediqal",
                   "mediqal", "native", work / "raw/mediqal", work / "norm/mediqal")  # fmt: skip
    english = timed("normalize translated (MedMCQA adapter)", n_trad, _normalize,
                    "medmcqa", "medmcqa", "translate", work / "raw/medmcqa",
                    work / "norm/medmcqa")  # fmt: skip
    french = work / "translated.parquet"
    timed("[stand-in for translation: relabel]", n_trad, relabel_french, english, french)
    total = pq.read_metadata(native).num_rows + pq.read_metadata(french).num_rows + n_syn
    out = work / "dataset"
    timed("merge + dedup + decontaminate + write", total, build_dataset, [native], [french],
          [work / "synthetic.parquet"], out, 0.9)  # fmt: skip
    size = min(33_493, int(33_493 * scale))
    for name, shares in MIXTURES.items():
        timed(f"mixture {name}", size, build_mixture, name, shares,
              [out / o / "train.parquet" for o in ("native", "translated", "synthetic")],
              [out / o / "validation.parquet" for o in ("native", "translated", "synthetic")],
              size, int(2000 * scale), 42, ["mcq", "mcqu"], "v1",
              work / "mix" / name / "train.jsonl", work / "mix" / name / "validation.jsonl",
              work / "mix" / name / "manifest.json")  # fmt: skip
    removed = sum(1 for _ in (out / "removed.csv").open()) - 1
    print(f"  removed by dedup/decontamination: {removed}")
    manifest = json.loads((work / "mix" / "ALL" / "manifest.json").read_text())
    print(f"  ALL mixture counts: {json.dumps(manifest['counts'])}")
    return phases


def main() -> None:
    """Generate the corpus, run the phases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_data_pipeline"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--run-only", action="store_true", help="(internal) phases only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.run_only:
        report(args.workdir, args.scale)
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
    subprocess.run([*command, "--scale", str(args.scale)], check=True)
    if not args.keep:
        shutil.rmtree(args.workdir)


def report(work: Path, scale: float) -> None:
    """Run the phases in this process and print the table."""
    phases = run(work, scale)
    path_s = sum(s for label, s, _ in phases if not label.startswith("["))
    print(f"\n{'phase':<40} {'wall s':>8} {'records':>9} {'rec/s':>10}")
    for label, seconds, count in phases:
        print(f"{label:<40} {seconds:8.1f} {count:9d} {count / max(seconds, 1e-9):10.0f}")
    print(f"{'path total (without the stand-in)':<40} {path_s:8.1f}   target < 60 s")
    print(f"peak RSS of the pipeline process {peak_rss_gb():.2f} GB   target < 4 GB")
    print(f"cores: {len(os.sched_getaffinity(0))} (timings on a shared machine are noisy)")


if __name__ == "__main__":
    main()
