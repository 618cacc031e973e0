"""Prediction speed: the project's batched transformers engine vs an official-style per-item loop.

Both paths run side by side in one process on the same tiny Qwen3 (the demo's geometry,
config/demo.yaml `base_model.tiny`, built locally) and the same test set: a few hundred French
items of realistic length, a mix of MCQU, MCQ and OEQ (OEQ budget capped, `--oeq-tokens`).

- engine: `TransformersPredictor.predict` (items batched by task, sorted by prompt length, one
  right-padded prefill per batch after a shared prompt head, the last layer at the last
  positions only; MCQU in that one forward pass; MCQ greedy + constrained rows decoded together
  in a preallocated cache).
- official-style: what the authors' Evaluate.py does (study.md §9): for each item, one `generate`
  (greedy, `output_scores=True`; letter probabilities from the first-step scores), then, for
  multiple-choice items, one constrained `generate` under the engine's `evaluation.protocol`
  (default `official`: Evaluate.py's static allowed set; `letters`: exactly one letter for MCQU,
  unused letters, separators and stop ids for MCQ), so that both paths must give identical
  predictions; the bench fails if they do not.

Prints items/s per path (overall and per task), the speed ratio (target >= 10x on CPU), and the
cost of the constrained pass (constrained time / greedy time) on each path.

Usage: python bench/predict_speed.py [--n-mcqu 240] [--n-mcq 80] [--n-oeq 32] [--oeq-tokens 64]
       [--batch-size 32] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 10.0

# Sentence bank for realistic French clinical questions (lengths like MediQAl / FrenchMedMCQA).
SENTENCES = (
    "Un homme de 67 ans, tabagique et hypertendu, consulte aux urgences pour une douleur "
    "thoracique constrictive apparue au repos depuis deux heures.",
    "L'électrocardiogramme montre un sus-décalage du segment ST dans le territoire inférieur.",
    "Une femme de 34 ans, enceinte de 32 semaines d'aménorrhée, présente des céphalées et des "
    "phosphènes ; la pression artérielle est mesurée à 168/105 mmHg.",
    "Le bilan biologique retrouve une protéinurie à 1,2 g par 24 heures et des plaquettes à "
    "95 000/mm³.",
    "Un enfant de 4 ans est amené pour une fièvre à 39,5 °C évoluant depuis trois jours, associée "
    "à une conjonctivite bilatérale et une chéilite.",
    "À l'examen, on note une raideur méningée et un purpura des membres inférieurs qui s'étend "
    "rapidement.",
    "La créatininémie est à 245 µmol/L, la kaliémie à 6,1 mmol/L et le débit de filtration "
    "glomérulaire estimé à 22 mL/min/1,73 m².",
    "Le patient est traité par metformine, ramipril et atorvastatine depuis plusieurs années.",
    "La radiographie thoracique montre une opacité alvéolaire systématisée du lobe "
    "inférieur droit.",
    "L'interrogatoire retrouve une perte de poids de 8 kg en trois mois et des sueurs nocturnes.",
    "La gazométrie artérielle en air ambiant montre un pH à 7,31, une PaCO2 à 58 mmHg et une "
    "PaO2 à 54 mmHg.",
    "Une patiente de 72 ans sous anticoagulant oral pour une fibrillation atriale chute à "
    "domicile et se plaint d'une douleur de hanche.",
)
QUESTIONS = (
    "Quel est le diagnostic le plus probable ?",
    "Quelle est la prise en charge thérapeutique de première intention ?",
    "Quel examen complémentaire demandez-vous en priorité ?",
    "Parmi les propositions suivantes, laquelle est exacte ?",
    "Quelles sont les propositions exactes concernant ce patient ?",
)
OPTIONS = (
    "une administration immédiate d'aspirine et d'héparine non fractionnée",
    "une angioplastie coronaire primaire dans les 120 minutes",
    "une échographie cardiaque transthoracique en urgence",
    "un dosage de la troponine à la sixième heure",
    "une antibiothérapie probabiliste par céphalosporine de troisième génération",
    "une ponction lombaire après un scanner cérébral",
    "un sulfate de magnésium par voie intraveineuse",
    "une extraction fœtale en urgence après corticothérapie",
    "une restriction hydrique et un arrêt des diurétiques",
    "une hémodialyse en urgence pour hyperkaliémie menaçante",
    "une immunoglobuline polyvalente par voie intraveineuse",
    "une surveillance simple sans traitement",
)
ANSWERS = (
    "Il s'agit d'un syndrome coronarien aigu avec sus-décalage du segment ST ; la reperfusion "
    "coronaire en urgence est le traitement de référence.",
    "Le tableau évoque une prééclampsie sévère qui impose une hospitalisation et un contrôle "
    "tensionnel.",
    "Une pneumopathie franche lobaire aiguë, à traiter par amoxicilline.",
)


def _question(rng: random.Random, sentences: int) -> str:
    return " ".join(rng.sample(SENTENCES, sentences)) + " " + rng.choice(QUESTIONS)


def make_records(n_mcqu: int, n_mcq: int, n_oeq: int, seed: int) -> list[Any]:
    """Seeded test records: MCQU (4-5 options), MCQ (5 options, 1-3 answers), OEQ."""
    from medinjection.records import Record, join_letters

    rng = random.Random(seed)
    records = []
    for i in range(n_mcqu + n_mcq):
        task = "mcqu" if i < n_mcqu else "mcq"
        n_options = 5 if task == "mcq" else rng.choice((4, 5))
        letters = "ABCDE"[:n_options]
        answer = rng.sample(letters, 1 if task == "mcqu" else rng.randint(1, 3))
        options = tuple(zip(letters, rng.sample(OPTIONS, n_options), strict=True))
        records.append(
            Record(
                id=f"bench:{task}{i}",
                origin="native",
                source="bench",
                task=task,
                split="test",
                question=_question(rng, rng.randint(2, 5)),
                answer=join_letters(answer),
                options=options,
            )
        )
    for i in range(n_oeq):
        records.append(
            Record(
                id=f"bench:oeq{i}",
                origin="native",
                source="bench",
                task="oeq",
                split="test",
                question=_question(rng, rng.randint(2, 4)),
                answer=rng.choice(ANSWERS),
            )
        )
    return records


def build_model(workdir: Path, records: Sequence[Any]) -> Path:
    """The demo's tiny Qwen3 geometry with a tokenizer trained on the bench records."""
    from medinjection.records import write_records
    from medinjection.settings import TinyModelSettings
    from medinjection.stages.train import prepare_base_model

    spec = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["base_model"]["tiny"]
    corpus = workdir / "bench.parquet"
    write_records(list(records), corpus)
    prepare_base_model(
        "tiny", workdir / "model", [corpus], tiny=TinyModelSettings.from_dict(dict(spec))
    )
    return workdir / "model"


class OfficialLoop:
    """One greedy `generate` per item, then one constrained `generate` (Evaluate.py's loop)."""

    def __init__(self, engine: Any) -> None:
        self.model, self.tokenizer, self.engine = engine.model, engine.tokenizer, engine
        self.timings = {"greedy": 0.0, "constrained": 0.0}

    def _generate(self, enc: dict[str, Any], budget: int, processor: Any = None) -> Any:
        from transformers import LogitsProcessorList

        return self.model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=budget,
            output_scores=True,
            return_dict_in_generate=True,
            eos_token_id=list(self.engine.stops),
            pad_token_id=self.engine.pad_id,
            logits_processor=LogitsProcessorList([processor]) if processor else None,
        )

    @torch.no_grad()
    def predict_one(self, item: Any) -> Any:
        """Greedy text, constrained text and first-step letter probabilities of one item."""
        from medinjection.modeling.decoding import (
            AllowedTokens,
            LetterConstraint,
            letter_probabilities,
            letter_tokens,
            official_allowed_ids,
        )
        from medinjection.modeling.types import Prediction

        text = self.tokenizer.apply_chat_template(
            item.messages, tokenize=False, add_generation_prompt=True
        )
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        width = enc["input_ids"].shape[1]
        start = time.perf_counter()
        out = self._generate(dict(enc), item.max_new_tokens)
        greedy = self.engine.decode(out.sequences[0, width:].tolist(), item.max_new_tokens)
        if item.record.task == "oeq":
            self.timings["greedy"] += time.perf_counter() - start
            return Prediction(greedy, None, None)
        tokens = letter_tokens(self.tokenizer, item.letters)
        probs = letter_probabilities(out.scores[0][0], tokens, self.engine.protocol)
        middle = time.perf_counter()
        self.timings["greedy"] += middle - start
        multi = item.record.task == "mcq"
        processor: Any = LetterConstraint(
            [tokens],
            prompt_length=width,
            separators=self.engine.separators if multi else (),
            stops=self.engine.stops if multi else (),
        )
        if self.engine.protocol == "official":
            processor = AllowedTokens([official_allowed_ids(self.tokenizer, tokens)])
        out = self._generate(dict(enc), item.max_new_tokens, processor)
        constrained = self.engine.decode(out.sequences[0, width:].tolist(), item.max_new_tokens)
        self.timings["constrained"] += time.perf_counter() - middle
        return Prediction(greedy, constrained, probs)

    def predict(self, items: Sequence[Any]) -> list[Any]:
        """Predictions of every item, one at a time."""
        return [self.predict_one(item) for item in items]


def differences(a: Sequence[Any], b: Sequence[Any], items: Sequence[Any]) -> list[str]:
    """Items whose greedy/constrained texts differ or whose letter probabilities differ > 1e-4."""
    found = []
    for item, x, y in zip(items, a, b, strict=True):
        same_probs = (x.letter_probs is None) == (y.letter_probs is None) and (
            x.letter_probs is None
            or all(
                math.isclose(x.letter_probs[k], y.letter_probs[k], abs_tol=1e-4)
                for k in x.letter_probs
            )
        )
        if (x.greedy, x.constrained) != (y.greedy, y.constrained) or not same_probs:
            found.append(f"{item.record.id}: engine {x} vs official {y}")
    return found


def _timed(predict: Any, items: Sequence[Any]) -> tuple[list[Any], float]:
    start = time.perf_counter()
    preds = predict(items)
    return preds, time.perf_counter() - start


def measure(paths: dict[str, Any], items: Sequence[Any], repeats: int) -> dict[str, Any]:
    """Best wall time of each path over `repeats` rounds, the paths interleaved in each round
    (the machine may be shared: interleaving exposes every path to the same load)."""
    best = dict.fromkeys(paths, math.inf)
    preds: dict[str, list[Any]] = {}
    for _ in range(repeats):
        for name, predict in paths.items():
            preds[name], seconds = _timed(predict, items)
            best[name] = min(best[name], seconds)
    return {"seconds": best, "predictions": preds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the model and test set, time both paths per task; returns the figures."""
    from medinjection.modeling.transformers_backend import TransformersPredictor
    from medinjection.stages.predict import prompt_items

    torch.set_num_threads(args.threads)
    records = make_records(args.n_mcqu, args.n_mcq, args.n_oeq, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        engine = TransformersPredictor(build_model(Path(tmp), records), None, args.batch_size)
    items = prompt_items(records, "v1", args.oeq_tokens)
    lengths = [len(ids) for ids in engine.prompt_ids(items)]
    official = OfficialLoop(engine)
    figures: dict[str, Any] = {
        "items": len(items),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "prompt_tokens_mean": sum(lengths) / len(lengths),
        "prompt_tokens_max": max(lengths),
        "oeq_tokens": args.oeq_tokens,
        "repeats": args.repeats,
        "tasks": {},
    }
    engine.predict(items[:2])  # warm-up (first-call allocations) outside the timings
    official.predict(items[:2])
    mismatches: list[str] = []
    greedy_only = 0.0
    official_mc = {"greedy": 0.0, "constrained": 0.0}
    for task in ("mcqu", "mcq", "oeq"):
        subset = [item for item in items if item.record.task == task]
        if not subset:
            continue
        paths = {"engine": engine.predict, "official": official.predict}
        if task != "oeq":  # the engine without its constrained run: the greedy-only cost
            paths["greedy_only"] = partial(engine.predict, constrained=False)
        official.timings = {"greedy": 0.0, "constrained": 0.0}
        result = measure(paths, subset, args.repeats)
        seconds, preds = result["seconds"], result["predictions"]
        mismatches += differences(preds["engine"], preds["official"], subset)
        figures["tasks"][task] = {
            "n": len(subset),
            "engine_s": seconds["engine"],
            "official_s": seconds["official"],
        }
        if task != "oeq":
            figures["tasks"][task]["engine_greedy_only_s"] = seconds["greedy_only"]
            greedy_only += seconds["greedy_only"]
            for phase, total in official.timings.items():  # mean over the repeats
                official_mc[phase] += total / args.repeats
    figures["engine_s"] = sum(t["engine_s"] for t in figures["tasks"].values())
    figures["official_s"] = sum(t["official_s"] for t in figures["tasks"].values())
    mc_engine = sum(t["engine_s"] for k, t in figures["tasks"].items() if k != "oeq")
    figures["engine_timings"] = {"greedy": greedy_only, "constrained": mc_engine - greedy_only}
    figures["official_timings"] = official_mc  # MCQU + MCQ only (OEQ runs last)
    figures["mismatches"] = mismatches
    return figures


def report(figures: dict[str, Any]) -> str:
    """Human-readable lines of the figures."""
    lines = [
        f"{figures['items']} items, prompts {figures['prompt_tokens_mean']:.0f} tokens on "
        f"average (max {figures['prompt_tokens_max']}), OEQ budget {figures['oeq_tokens']}, "
        f"batch {figures['batch_size']}, {figures['threads']} torch thread(s), "
        f"best of {figures['repeats']} timings",
        f"{'task':<6}{'n':>5}{'engine it/s':>14}{'official it/s':>15}{'ratio':>8}",
    ]
    for task, t in figures["tasks"].items():
        lines.append(
            f"{task:<6}{t['n']:>5}{t['n'] / t['engine_s']:>14.1f}{t['n'] / t['official_s']:>15.1f}"
            f"{t['official_s'] / t['engine_s']:>7.1f}x"
        )
    n, engine_s, official_s = figures["items"], figures["engine_s"], figures["official_s"]
    ratio = official_s / engine_s
    lines.append(
        f"{'all':<6}{n:>5}{n / engine_s:>14.1f}{n / official_s:>15.1f}{ratio:>7.1f}x "
        f"(target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    for name in ("engine", "official"):
        t = figures[f"{name}_timings"]
        cost = t["constrained"] / t["greedy"] if t["greedy"] else float("nan")
        lines.append(
            f"MCQ/MCQU constrained pass, {name}: {t['constrained']:.2f}s on top of greedy "
            f"{t['greedy']:.2f}s (x{cost:.2f} of greedy)"
        )
    bad = figures["mismatches"]
    lines.append(
        f"predictions identical on all {n} items (greedy, constrained, letter probs)"
        if not bad
        else f"{len(bad)} items differ, first: {bad[0]}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; exit status 1 if the two paths disagree on any prediction."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-mcqu", type=int, default=240)
    parser.add_argument("--n-mcq", type=int, default=80)
    parser.add_argument("--n-oeq", type=int, default=32)
    parser.add_argument("--oeq-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    figures = run(args)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["mismatches"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
