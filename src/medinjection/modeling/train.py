"""LoRA/DoRA SFT of the base model on one mixture with TRL (`-m medinjection.modeling.train`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medinjection.logs import exit_without_teardown, setup_logging
from medinjection.modeling.checkpoints import (
    StopOnSignal,
    TrainingInterrupted,
    finished_steps,
    last_checkpoint,
    run_fingerprint,
)
from medinjection.modeling.kernels import check_attn_implementation, load_model
from medinjection.modeling.provenance import training_provenance
from medinjection.modeling.token_lengths import count_over_length
from medinjection.modeling.train_config import (
    check_hparams,
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


def load_rows(path: Path, loss_on: str) -> list[dict[str, Any]]:
    """Mixture rows as TRL examples: `messages` (conversation) or prompt/completion (answer)."""
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
            if loss_on == "answer":
                rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
            else:
                rows.append({"messages": messages})
    return rows


def _total(counts: Mapping[str, Any] | int) -> int:
    """Sum of a manifest's nested {origin: {source: {task: n}}} counts."""
    return counts if isinstance(counts, int) else sum(_total(v) for v in counts.values())


def check_mixture_files(manifest_path: Path, train_path: Path, validation_path: Path) -> None:
    """Raise unless the mixture files have the rows and sha256 their manifest records (one
    streaming pass per file, as every consumer's check: medinjection.manifests)."""
    from medinjection.manifests import file_summary

    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    for part, path, size_key in (
        ("train", train_path, "size"),
        ("validation", validation_path, "validation_size"),
    ):
        expected_rows = _total(manifest["validation_counts" if part == "validation" else "counts"])
        summary = file_summary(Path(path))
        rows, sha = summary["rows"], summary["sha256"]
        if rows != expected_rows or sha != manifest[f"{part}_sha256"]:
            raise ValueError(
                f"{path}: {rows} rows, sha256 {sha[:12]}…, but its manifest {manifest_path} "
                f"records {expected_rows} rows ({size_key} {manifest.get(size_key)}), sha256 "
                f"{manifest[f'{part}_sha256'][:12]}…: the file was cut or changed after it was "
                "built. Rebuild the mixture (snakemake --forcerun build_mixture) before training"
            )


def _conversations(rows: Sequence[Mapping[str, Any]]) -> list[list[dict[str, str]]]:
    return [list(row.get("messages") or [*row["prompt"], *row["completion"]]) for row in rows]


def _use_bf16(requested: bool) -> bool:
    import torch

    if requested and not torch.cuda.is_available():
        raise RuntimeError(
            "training.bf16 is true but no CUDA device is visible: run the train rule on a GPU "
            "node, or set training.bf16: false for a CPU run (the demo)"
        )
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
    train_path: Path, validation_path: Path, loss_on: str, tokenizer: Any, max_length: int
) -> tuple[Any, Any, dict[str, int]]:
    from datasets import Dataset

    train_rows, val_rows = load_rows(train_path, loss_on), load_rows(validation_path, loss_on)
    if not train_rows:
        raise ValueError(f"{train_path}: no training examples")
    counts = {
        "n_train": len(train_rows),
        "n_validation": len(val_rows),
        "n_train_truncated": count_over_length(tokenizer, _conversations(train_rows), max_length),
        "n_validation_truncated": count_over_length(
            tokenizer, _conversations(val_rows), max_length
        ),
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


def world_size(gpus: int) -> int:
    """Processes of this run; raises when it is not the job's GPU count (wrong launcher)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if max(int(gpus), 1) != world:
        raise RuntimeError(
            f"compute.train.gpus is {gpus} but WORLD_SIZE is {world}: start training "
            "through `python -m medinjection.modeling.launch --gpus N --` (the train rule does)"
        )
    return world


def check_deepspeed(hparams: Mapping[str, Any]) -> None:
    """Raise when `distributed: zero2|zero3` cannot run here (no deepspeed package or GPU)."""
    import importlib.util

    import torch

    if hparams["distributed"] == "ddp":
        return
    if importlib.util.find_spec("deepspeed") is None:
        raise RuntimeError(
            f"training.distributed is {hparams['distributed']} but the deepspeed package is not "
            "installed (envs/gpu.yaml pins deepspeed==0.19.8), or set training.distributed: ddp"
        )
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"training.distributed is {hparams['distributed']} (DeepSpeed) but no CUDA device "
            "is visible; use training.distributed: ddp for a CPU run"
        )


def build_trainer(
    config: Mapping[str, Any],
    model_dir: Path,
    train_path: Path,
    validation_path: Path,
    run_dir: Path,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, dict[str, int]]:
    """The SFTTrainer of one run (model, datasets, LoRA/DoRA config) and its example counts."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    hparams = config["hparams"]
    training, seed = check_hparams(hparams)
    use_bf16 = _use_bf16(training.bf16)
    check_attn_implementation(training.attn_implementation)
    check_deepspeed(hparams)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train_ds, val_ds, counts = _datasets(
        Path(train_path), Path(validation_path), training.loss_on, tokenizer, training.max_length
    )
    # SFTConfig before the model: under ZeRO-3 it must exist for from_pretrained to shard
    evaluate, deepspeed = val_ds is not None, config.get("deepspeed")
    args = sft_config(training, seed, run_dir, use_bf16, evaluate, deepspeed)
    model = load_model(Path(model_dir), hparams, use_bf16)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        peft_config=lora_config(training),
        callbacks=list(callbacks),
    )
    return trainer, counts


def train(
    config_path: Path,
    model_dir: Path,
    train_path: Path,
    validation_path: Path,
    adapter_dir: Path,
    metrics_path: Path,
    loss_plot: Path,
    checkpoints_dir: Path,
    callbacks: Sequence[Any] = (),
    manifest_path: Path | None = None,
    gpus: int = 0,
) -> TrainOutcome:
    """Fine-tune with TRL SFTTrainer + PEFT, resuming from `checkpoints_dir` when possible.

    With `manifest_path` (the mixture's manifest; the train rule always gives it) the mixture
    files are first checked against it: row counts and sha256. `gpus` is the job's GPU count
    (compute.train.gpus, a resource): not in the rendered config, so changing it reruns nothing; the
    effective batch it sets is recorded in the metrics.
    """
    if manifest_path is not None:
        check_mixture_files(Path(manifest_path), Path(train_path), Path(validation_path))
    config = read_train_config(config_path)
    hparams = config["hparams"]
    world = world_size(gpus)
    # one sub-folder per run fingerprint: a retry resumes, a changed config/data/world starts
    # afresh (the world size sets the effective batch, so checkpoints of another one don't fit)
    fingerprint = run_fingerprint(
        {**hparams, "world_size": world}, model_dir, train_path, validation_path
    )
    run_dir = Path(checkpoints_dir) / fingerprint[:16]
    last = last_checkpoint(run_dir)
    trainer, counts = build_trainer(
        config, model_dir, train_path, validation_path, run_dir, callbacks
    )
    start = time.monotonic()
    if last is not None and finished_steps(last) is not None:
        _reload_finished(trainer, hparams, last, run_dir)
    else:
        trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    if state.global_step < state.max_steps:
        raise TrainingInterrupted(
            f"training stopped at step {state.global_step} of {state.max_steps}; the last "
            f"checkpoint is in {run_dir}: rerun the same job to resume from it"
        )
    final = state.global_step
    if trainer.eval_dataset is not None and not any(
        e.get("step") == final and "eval_loss" in e for e in state.log_history
    ):
        trainer.evaluate()  # no validation at the last step: still report a final validation loss
    wall_s = time.monotonic() - start
    metrics = {
        **_metrics(trainer, hparams, counts, wall_s, world, last),
        "provenance": training_provenance(
            model_dir, train_path, validation_path, config_path, fingerprint
        ),
    }
    _write_outputs(trainer, metrics, adapter_dir, metrics_path, loss_plot, config["mixture"])
    return TrainOutcome(model=trainer.model, metrics=metrics)


def _reload_finished(trainer: Any, hparams: Mapping[str, Any], last: str, run_dir: Path) -> None:
    """Load a run's final checkpoint without training: a rerun of a finished run adds no step."""
    from transformers.trainer_callback import TrainerState

    if hparams["distributed"] == "zero3":
        raise RuntimeError(
            f"the run in {run_dir} already ended at {Path(last).name}; reloading a finished "
            "ZeRO-3 run is not supported (its adapter is in that checkpoint's "
            "adapter_model.safetensors): copy it, or delete the folder to train again"
        )
    log.info("%s already ends the run: outputs rebuilt from it, no step taken", last)
    trainer._load_from_checkpoint(last)
    trainer.state = TrainerState.load_from_json(str(Path(last) / "trainer_state.json"))


def _peak_gpu_memory_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def _metrics(
    trainer: Any,
    hparams: Mapping[str, Any],
    counts: Mapping[str, int],
    wall_s: float,
    world: int,
    resumed_from: str | None,
) -> dict[str, Any]:
    history = trainer.state.log_history
    tokens = int(trainer.state.num_input_tokens_seen)
    batch = int(hparams["per_device_batch_size"]) * int(hparams["gradient_accumulation_steps"])
    return {
        "train_loss": _loss_points(history, "loss"),
        "eval_loss": _loss_points(history, "eval_loss"),
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "tokens_seen": tokens,
        "wall_s": round(wall_s, 3),
        # this session only: a resumed run's wall time does not cover the steps before it
        "tokens_per_s_per_gpu": round(tokens / max(wall_s, 1e-9) / world, 1)
        if resumed_from is None
        else None,
        "peak_gpu_memory_gib": _peak_gpu_memory_gib(),
        "world_size": world,
        "effective_batch_size": batch * world,
        **counts,
        "resumed_from": Path(resumed_from).name if resumed_from else None,
        "loss_on": hparams["loss_on"],
        "hparams": dict(hparams),
    }


def _write_outputs(
    trainer: Any,
    metrics: Mapping[str, Any],
    adapter_dir: Path,
    metrics_path: Path,
    loss_plot: Path,
    mixture: str,
) -> None:
    # every rank: under ZeRO-3 saving gathers the adapter shards (only rank 0 writes files)
    trainer.save_model(str(adapter_dir))
    if not trainer.is_world_process_zero():
        return
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
    parser.add_argument(
        "--manifest", type=Path, default=None, help="the mixture's manifest (rows, sha256)"
    )
    parser.add_argument(
        "--gpus", type=int, default=0, help="GPUs of the job (set by medinjection.modeling.launch)"
    )
    parser.add_argument("--log", type=Path, default=None, help="log file (default: stderr only)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point (run under `python` or torchrun, see modeling.launch)."""
    args = _parser().parse_args(argv)
    setup_logging(args.log)
    # SLURM sends SIGTERM at the time limit and on preemption: save a checkpoint and stop
    train(
        config_path=args.config,
        model_dir=args.model,
        train_path=args.train,
        validation_path=args.validation,
        adapter_dir=args.adapter,
        metrics_path=args.metrics,
        loss_plot=args.loss_plot,
        checkpoints_dir=args.checkpoints,
        callbacks=[StopOnSignal.install()],
        manifest_path=args.manifest,
        gpus=args.gpus,
    )


if __name__ == "__main__":
    main()
    exit_without_teardown()  # returns under torchrun (WORLD_SIZE > 1): every rank exits normally
