"""BERTScore throughput on this machine: what a `score` job costs without a GPU (compute.score).

Two backbones, on the same French answer pairs (the sentence bank of bench/predict_speed.py):
- `minilm`: the packaged MiniLM the tests and the demo use (evaluation.bertscore.model
  `minilm-packaged`, 6 layers, hidden 384);
- `xlmr-large-shape`: a randomly initialised model with xlm-roberta-large's geometry (hidden 1024,
  16 heads, intermediate 4096, 24 layers of which bert-score keeps num_layers = 17, the study's),
  built locally because the real weights are a Hub download. Weights do not change the cost;
  its vocabulary is the MiniLM tokenizer's (30,522 WordPiece tokens, not XLM-R's 250,002
  SentencePiece): the embedding lookup is a negligible part of the cost, but the token counts of a
  text differ between the two tokenizers, so the per-token rate is the figure that carries over.

Prints, per backbone as soon as it is measured, pairs/s, tokens/s and CPU seconds per pair, and
the CPU time of the study's open answers per model (`--pairs-per-model`, config/config.yaml:
mediqal-oeq, 4,969 items) at the measured CPU cost per pair: an estimate, scaled linearly in the
number of pairs at the measured pair length; the wall time of a `--threads`-core job is that CPU
time over the thread count at best (CPU time, unlike wall time, holds on a loaded machine).

Usage: python bench/bertscore_speed.py [--pairs 64] [--hyp-words 200] [--ref-words 60]
       [--threads 2] [--batch-size 32] [--pairs-per-model 4969] [--models 8]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from predict_speed import SENTENCES  # noqa: E402

from medinjection.evaluation import metrics  # noqa: E402
from medinjection.modeling.bertscore_model import resolve_bertscore_model  # noqa: E402


def text(rng: random.Random, words: int) -> str:
    """French clinical prose of about `words` words."""
    out: list[str] = []
    while len(" ".join(out).split()) < words:
        out.append(rng.choice(SENTENCES))
    return " ".join(" ".join(out).split()[:words])


def xlmr_large_shape(minilm: Path, folder: Path) -> Path:
    """A random model with xlm-roberta-large's geometry and the MiniLM tokenizer, saved locally."""
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(name: str, model_dir: Path, layers: int, hyps, refs, batch_size: int) -> dict:
    from transformers import AutoTokenizer

    settings = {
        "model_type": str(model_dir),
        "num_layers": layers,
        "lang": "fr",
        "rescale_with_baseline": False,
        "baseline_path": None,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokens = sum(
        min(512, len(tokenizer(t)["input_ids"])) for t in [*hyps, *refs]
    )  # bert-score truncates at the model's 512
    metrics.bertscore_f1(hyps[:2], refs[:2], settings, batch_size, "cpu")  # load + warm up
    cpu0, wall0 = time.process_time(), time.perf_counter()
    metrics.bertscore_f1(hyps, refs, settings, batch_size, "cpu")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "backbone": name,
        "layers": layers,
        "pairs": len(hyps),
        "tokens": tokens,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "pairs_per_s": round(len(hyps) / wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--hyp-words", type=int, default=200)
    parser.add_argument("--ref-words", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pairs-per-model", type=int, default=4969)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    hyps = [text(rng, args.hyp_words) for _ in range(args.pairs)]
    refs = [text(rng, args.ref_words) for _ in range(args.pairs)]
    minilm = resolve_bertscore_model("minilm-packaged")

    def show(row: dict) -> None:
        cpu_h = args.pairs_per_model * row["cpu_s"] / row["pairs"] / 3600
        row["cpu_s_per_pair"] = round(row["cpu_s"] / row["pairs"], 3)
        row["est_cpu_h_per_model"] = round(cpu_h, 2)
        row["est_wall_h_per_model_at_best"] = round(cpu_h / args.threads, 2)
        row["est_cpu_h_all_models"] = round(cpu_h * args.models, 1)
        print(json.dumps(row), flush=True)

    show(measure("minilm", minilm, 6, hyps, refs, args.batch_size))
    if not args.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            large = xlmr_large_shape(minilm, Path(tmp))
            show(measure("xlmr-large-shape", large, 17, hyps, refs, args.batch_size))
    print(
        f"(threads {args.threads}, batch {args.batch_size}, {args.hyp_words}-word answers vs "
        f"{args.ref_words}-word references; estimate = {args.pairs_per_model} pairs per model x "
        "measured CPU s per pair, linear in pairs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
