"""LoRA/DoRA SFT of the base model on one mixture with TRL (`-m medinjection.modeling.train`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import medinjection
from medinjection.logs import setup_logging
from medinjection.modeling.train_config import (
    lora_config,
    read_train_config,
    sft_config,
    write_train_config,
)

log = logging.getLogger(__name__)

__all__ = ["TrainOutcome", "load_rows", "main", "train", "write_train_config"]


@dataclass(frozen=True)
class TrainOutcome:
    """The trained PEFT model (in memory) and the metrics written to disk."""

    model: Any
    metrics: dict[str, Any]


def load_rows(path: Path, loss: str) -> list[dict[str, Any]]:
    """Mixture JSONL rows as TRL examples: `messages` (full loss) or prompt/completion."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            messages = item.get("messages")
            if not messages or messages[-1].get("role") != "assistant":
                raise ValueError(
                    f"{path}:{line_no} (id {item.get('id')!r}): 'messages' must end with an "
                    "assistant turn; rebuild the mixture with prompts.training_messages"
                )
            if loss == "completion":
                rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
            else:
                rows.append({"messages": messages})
    return rows


def count_over_length(tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_length: int) -> int:
    """How many rows TRL will truncate (their templated token count exceeds max_length)."""
    over = 0
    for row in rows:
        messages = row.get("messages") or [*row["prompt"], *row["completion"]]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        over += len(ids) > max_length
    return over


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(medinjection.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _load_model(model_dir: Path, use_bf16: bool) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.bfloat16 if use_bf16 else torch.float32,
        attn_implementation="sdpa",
    )
    return model, tokenizer


def _use_bf16(requested: bool) -> bool:
    import torch

    if requested and not torch.cuda.is_available():
        log.warning("training.bf16 is true but no CUDA device is visible: training in float32")
        return False
    return bool(requested)


def _loss_points(log_history: list[dict[str, Any]], key: str) -> list[list[float]]:
    return [[entry["step"], entry[key]] for entry in log_history if key in entry]


def write_loss_plot(metrics: Mapping[str, Any], path: Path, title: str) -> None:
    """Loss curve (train and validation loss against optimizer step) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in (("train_loss", "-o"), ("eval_loss", "--s")):
        points = metrics[key]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=key, markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _datasets(
    train_path: Path, validation_path: Path, loss: str, tokenizer: Any, max_length: int
) -> tuple[Any, Any, dict[str, int]]:
    from datasets import Dataset

    train_rows, val_rows = load_rows(train_path, loss), load_rows(validation_path, loss)
    if not train_rows:
        raise ValueError(f"{train_path}: no training examples")
    counts = {
        "n_train": len(train_rows),
        "n_validation": len(val_rows),
        "n_train_truncated": count_over_length(tokenizer, train_rows, max_length),
        "n_validation_truncated": count_over_length(tokenizer, val_rows, max_length),
    }
    log.info(
        "%d train / %d validation examples; %d / %d longer than max_length %d (truncated by TRL)",
        counts["n_train"],
        counts["n_validation"],
        counts["n_train_truncated"],
        counts["n_validation_truncated"],
        max_length,
    )
    val = Dataset.from_list(val_rows) if val_rows else None
    return Dataset.from_list(train_rows), val, counts


def train(
    config_path: Path,
    model_dir: Path,
    train_path: Path,
    validation_path: Path,
    adapter_dir: Path,
    metrics_path: Path,
    loss_plot: Path,
    checkpoints_dir: Path,
    save_steps: int = 50,
    logging_steps: int = 1,
    callbacks: Sequence[Any] = (),
) -> TrainOutcome:
    """Fine-tune with TRL SFTTrainer + PEFT, resuming from `checkpoints_dir` when possible."""
    from trl import SFTTrainer

    config = read_train_config(config_path)
    hparams = config["hparams"]
    use_bf16 = _use_bf16(hparams["bf16"])
    model, tokenizer = _load_model(Path(model_dir), use_bf16)
    max_length = int(hparams["max_length"])
    train_ds, val_ds, counts = _datasets(
        Path(train_path), Path(validation_path), hparams["loss"], tokenizer, max_length
    )
    _check_world_size(hparams)
    # one sub-folder per run fingerprint: a retry resumes, a changed config/data starts afresh
    run_dir = (
        Path(checkpoints_dir)
        / run_fingerprint(hparams, model_dir, train_path, validation_path)[:16]
    )
    last = last_checkpoint(run_dir)
    args = sft_config(hparams, run_dir, save_steps, logging_steps, use_bf16, val_ds is not None)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        peft_config=lora_config(hparams),
        callbacks=list(callbacks),
    )
    start = time.monotonic()
    trainer.train(resume_from_checkpoint=True if last else None)
    final = trainer.state.global_step
    if val_ds is not None and not any(
        e.get("step") == final and "eval_loss" in e for e in trainer.state.log_history
    ):
        trainer.evaluate()  # no validation at the last step: still report a final validation loss
    wall_s = time.monotonic() - start
    metrics = _metrics(trainer, hparams, counts, wall_s, Path(train_path), last)
    if trainer.is_world_process_zero():
        _write_outputs(trainer, metrics, adapter_dir, metrics_path, loss_plot, config["mixture"])
    return TrainOutcome(model=trainer.model, metrics=metrics)


def run_fingerprint(
    hparams: Mapping[str, Any], model_dir: Path, train_path: Path, validation_path: Path
) -> str:
    """Hash of what shapes the run (not its resource keys); checkpoints are kept per hash."""
    blob = json.dumps(
        {
            "hparams": {k: v for k, v in hparams.items() if k not in ("runtime_min", "mem_mb")},
            "base_config": _sha256(Path(model_dir) / "config.json"),
            "train": _sha256(Path(train_path)),
            "validation": _sha256(Path(validation_path)),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def last_checkpoint(run_dir: Path) -> str | None:
    """Last checkpoint saved in `run_dir`, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    run_dir.mkdir(parents=True, exist_ok=True)
    last = get_last_checkpoint(str(run_dir))
    if last:
        log.info("resuming from checkpoint %s", last)
    return last


def _check_world_size(hparams: Mapping[str, Any]) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if max(int(hparams["gpus"]), 1) != world:
        log.warning("training.gpus is %s but WORLD_SIZE is %d", hparams["gpus"], world)


def _metrics(
    trainer: Any,
    hparams: Mapping[str, Any],
    counts: Mapping[str, int],
    wall_s: float,
    train_path: Path,
    resumed_from: str | None,
) -> dict[str, Any]:
    history = trainer.state.log_history
    return {
        "train_loss": _loss_points(history, "loss"),
        "eval_loss": _loss_points(history, "eval_loss"),
        "steps": trainer.state.global_step,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "wall_s": round(wall_s, 3),
        **counts,
        "resumed_from": Path(resumed_from).name if resumed_from else None,
        "hparams": dict(hparams),
        "provenance": {
            "package_version": medinjection.__version__,
            "git_commit": _git_commit(),
            "train_sha256": _sha256(train_path),
        },
    }


def _write_outputs(
    trainer: Any,
    metrics: Mapping[str, Any],
    adapter_dir: Path,
    metrics_path: Path,
    loss_plot: Path,
    mixture: str,
) -> None:
    Path(adapter_dir).mkdir(parents=True, exist_ok=True)
    trainer.accelerator.unwrap_model(trainer.model).save_pretrained(adapter_dir)
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_loss_plot(metrics, Path(loss_plot), f"SFT loss: {mixture}")
    log.info("adapter -> %s; %d steps, metrics -> %s", adapter_dir, metrics["steps"], metrics_path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m medinjection.modeling.train", description=__doc__
    )
    for flag in ("config", "model", "train", "validation", "adapter", "metrics", "loss-plot"):
        parser.add_argument(f"--{flag}", required=True, type=Path)
    parser.add_argument("--checkpoints", required=True, type=Path, help="kept across retries")
    parser.add_argument("--save-steps", type=int, default=50)
    parser.add_argument("--logging-steps", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="log file (default: stderr only)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point (run under `python` or `torchrun`, see modeling.launch)."""
    args = _parser().parse_args(argv)
    setup_logging(args.log)
    train(
        config_path=args.config,
        model_dir=args.model,
        train_path=args.train,
        validation_path=args.validation,
        adapter_dir=args.adapter,
        metrics_path=args.metrics,
        loss_plot=args.loss_plot,
        checkpoints_dir=args.checkpoints,
        save_steps=args.save_steps,
        logging_steps=args.logging_steps,
    )


if __name__ == "__main__":
    main()
