"""Training throughput of the study's SFT on the exact Qwen3-4B architecture, side by side.

Builds a randomly initialised Qwen3-4B-Instruct-2507 from its config values (no download), trains
a few optimizer steps through the workflow's own TRL/PEFT setup (medinjection.modeling.train_config)
on random tokens of realistic lengths, and prints tokens/s per GPU, peak GPU memory, MFU and HFU
for the paper's settings and for faster variants:

  paper         config/config.yaml: DoRA r16 dropout 0.05, grad checkpointing, batch 12 x 8,
                group_by_length, pad to 8, sdpa, no packing
  paper-packed  the same with bfd packing (padding-free), packed rows sized to keep the paper's
                tokens per micro-batch
  dora-fast     DoRA without dropout (the base output is reused), packing, no checkpointing:
                the same adapter as the paper's (faithful up to the dropout regulariser)
  lora-fast     plain LoRA, no dropout, packing, no checkpointing: a different adapter (not
                faithful), the upper bound of this stack
  dora-liger    dora-fast + Liger Triton kernels (only with --liger; needs liger-kernel)

Run on one H200/H100 (see docs/training.md for the wheels to carry to an offline GPU box):
    python bench/train_throughput.py --out train_throughput.json
On CPU, in seconds, with a tiny model (what tests/bench/test_bench_train_throughput.py runs):
    python bench/train_throughput.py --tiny
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medinjection.modeling.flops import (
    H100_BF16_DENSE_FLOPS,
    Geometry,
    flops_summary,
    utilisation,
)
from medinjection.settings import TrainingSettings

# Qwen/Qwen3-4B-Instruct-2507 config.json (the 2507 release: 262,144-token context and rope theta
# 5e6, where the original Qwen3-4B has 40,960 and 1e6).
QWEN3_4B_2507: dict[str, Any] = {
    "hidden_size": 2560,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 9728,
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
    "rope_theta": 5_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
TINY: dict[str, Any] = {
    **QWEN3_4B_2507,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 512,
    "max_position_embeddings": 512,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def paper_hparams() -> dict[str, Any]:
    """config/config.yaml's `training:` block (the paper's settings) as one run's hparams (seed
    42), for a few timed steps: one epoch, no checkpoint or log line inside them."""
    block = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["training"]
    training = TrainingSettings.from_dict(block, "training")
    return replace(training, epochs=1, save_steps=1_000_000, logging_steps=1_000_000).run_hparams(
        42
    )


PAPER: dict[str, Any] = paper_hparams()
FAST = {"dropout": 0.0, "packing": True, "gradient_checkpointing": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},
    "paper-packed": {"packing": True},
    "dora-fast": FAST,
    "lora-fast": {**FAST, "method": "lora"},
    "dora-liger": {**FAST, "liger_kernel": True},
}
# Assumed length profile of a French MCQ mixture under Qwen's tokenizer (system + question +
# options + answer): pass --lengths results/train/<mixture>/token_lengths.json for measured ones.
DEFAULT_PROFILE = {"min": 120, "p50": 350, "p90": 700, "p95": 900, "p99": 1400, "max": 2048}


def sample_lengths(profile: dict[str, float], n: int, seed: int) -> list[int]:
    """n lengths drawn through the piecewise-linear inverse CDF of a percentile profile."""
    quantiles = [0.0, 0.5, 0.9, 0.95, 0.99, 1.0]
    values = [profile[k] for k in ("min", "p50", "p90", "p95", "p99", "max")]
    draws = np.random.default_rng(seed).random(n)
    return [max(2, int(round(v))) for v in np.interp(draws, quantiles, values)]


def _profile(args: argparse.Namespace) -> dict[str, float]:
    if args.lengths:
        return json.loads(Path(args.lengths).read_text())["train"]["sequence"]
    if args.tiny:
        return {"min": 8, "p50": 40, "p90": 80, "p95": 100, "p99": 120, "max": 128}
    return DEFAULT_PROFILE


def _pad_tokenizer() -> Any:
    """A stand-in tokenizer (the data is pre-tokenized): pad id 0, never drawn as a token."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={"<pad>": 0, "<eos>": 1}, unk_token="<pad>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    return tok


def _model(config_values: dict[str, Any], hparams: dict[str, Any], device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from medinjection.modeling.kernels import apply_liger, check_attn_implementation

    check_attn_implementation(hparams["attn_implementation"])
    config = Qwen3Config(**config_values)
    dtype = torch.bfloat16 if hparams["bf16"] else torch.float32
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place on the GPU: seconds, not minutes
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype, attn_implementation=hparams["attn_implementation"]
        )
    if hparams["liger_kernel"]:
        apply_liger(model)
    return model


def _step_timer() -> Any:
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """(time, tokens seen) at the end of every optimizer step, after a device sync."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))
            return control

    return StepTimer()


def variant_hparams(name: str, base: dict[str, Any], mean_length: float) -> dict[str, Any]:
    """The hparams of one variant; packed rows keep the paper's tokens per micro-batch."""
    hparams = {**base, **VARIANTS[name]}
    if hparams["packing"]:
        tokens = base["per_device_batch_size"] * mean_length
        hparams["per_device_batch_size"] = max(1, round(tokens / hparams["max_length"]))
    return hparams


def run_variant(
    name: str,
    hparams: dict[str, Any],
    config_values: dict[str, Any],
    lengths: list[int],
    steps: int,
    warmup: int,
    peak: float,
) -> dict[str, Any]:
    """Train warmup + steps optimizer steps; tokens/s, memory, MFU over the timed steps."""
    import datasets
    import torch
    from trl import SFTTrainer

    from medinjection.modeling.train_config import lora_config, sft_config

    datasets.disable_progress_bars()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(1)
    vocab = int(config_values["vocab_size"])
    rows = [{"input_ids": rng.integers(1, vocab, size=t).tolist()} for t in lengths]
    hparams = {**hparams, "max_steps": warmup + steps}
    training, seed = TrainingSettings.from_run_hparams(hparams)
    timer = _step_timer()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SFTTrainer(
            model=_model(config_values, hparams, device),
            args=sft_config(training, seed, Path(tmp), training.bf16, evaluate=False),
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=_pad_tokenizer(),
            peft_config=lora_config(training),
            callbacks=[timer],
        )
        trainer.train()
        del trainer
    gc.collect()
    (t0, n0), (t1, n1) = timer.marks[warmup - 1], timer.marks[-1]
    tokens_per_s = (n1 - n0) / (t1 - t0)
    flops = flops_summary(Geometry.from_config(_config(config_values)), hparams, lengths)
    return {
        "variant": name,
        "timed_steps": len(timer.marks) - warmup,
        "step_s": round((t1 - t0) / (len(timer.marks) - warmup), 4),
        "tokens_per_step": (n1 - n0) // max(len(timer.marks) - warmup, 1),
        "tokens_per_s_per_gpu": round(tokens_per_s, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device == "cuda"
        else None,
        "mfu": round(utilisation(tokens_per_s, flops["model_flops_per_token"], peak), 4),
        "hfu": round(utilisation(tokens_per_s, flops["hardware_flops_per_token"], peak), 4),
        **flops,
        "settings": {
            k: hparams[k]
            for k in (
                "method",
                "dropout",
                "packing",
                "gradient_checkpointing",
                "per_device_batch_size",
                "gradient_accumulation_steps",
                "attn_implementation",
                "liger_kernel",
                "bf16",
            )
        },
    }


def _config(values: dict[str, Any]) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(**values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU (float32)")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (>= 1)")
    parser.add_argument("--variants", default="paper,paper-packed,dora-fast,lora-fast")
    parser.add_argument("--liger", action="store_true", help="add the dora-liger variant")
    parser.add_argument("--lengths", type=Path, help="a token_lengths.json to draw lengths from")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_BF16_DENSE_FLOPS / 1e12,
        help="dense bf16 peak of one GPU (H100/H200 SXM: 989)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    return parser


def _table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'variant':<13} {'tok/s/GPU':>10} {'step s':>8} {'peak GiB':>9} {'MFU':>6} {'HFU':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if "error" in r:
            lines.append(f"{r['variant']:<13} {r['error']}")
            continue
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        lines.append(
            f"{r['variant']:<13} {r['tokens_per_s_per_gpu']:>10.0f} {r['step_s']:>8.3f} "
            f"{mem:>9} {r['mfu']:>6.1%} {r['hfu']:>6.1%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the variants, print the side-by-side table, optionally write JSON."""
    import torch

    args = _parser().parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("--warmup and --steps must be >= 1")
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --tiny on CPU, or on a GPU node")
    config_values = TINY if args.tiny else QWEN3_4B_2507
    base = {**PAPER, "bf16": not args.tiny}
    if args.tiny:
        base.update(per_device_batch_size=4, gradient_accumulation_steps=2, max_length=128)
    names = args.variants.split(",") + (["dora-liger"] if args.liger else [])
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; valid: {sorted(VARIANTS)}")
    profile = _profile(args)
    mean = float(np.mean(sample_lengths(profile, 4096, seed=0)))
    results = []
    for name in names:
        hparams = variant_hparams(name, base, mean)
        per_step = hparams["per_device_batch_size"] * hparams["gradient_accumulation_steps"]
        rows_per_step = per_step * (hparams["max_length"] / mean if hparams["packing"] else 1)
        n_rows = int(rows_per_step * (args.steps + args.warmup) * 1.3) + 8
        lengths = sample_lengths(profile, n_rows, seed=42)
        try:
            result = run_variant(
                name,
                hparams,
                config_values,
                lengths,
                args.steps,
                args.warmup,
                args.peak_tflops * 1e12,
            )
        except (torch.cuda.OutOfMemoryError, RuntimeError) as error:
            if not isinstance(error, torch.cuda.OutOfMemoryError) and "liger" not in str(error):
                raise
            result = {"variant": name, "error": f"{type(error).__name__}: {str(error)[:200]}"}
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (tiny)"
    print(f"\n{device}; peak {args.peak_tflops:.0f} TFLOP/s; mean row length {mean:.0f} tokens")
    print(_table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"device": device, "peak_tflops": args.peak_tflops, "results": results}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
