"""Training hyper-parameters: the rendered config file and the TRL/PEFT objects built from it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import medinjection
from medinjection.settings import TrainingSettings

# Exactly the keys of the config's `training:` block (TrainingSettings, in the schema's order)
# with `seeds` replaced by `seed` (the run's own). The job's resources are not among them: they
# are `compute.train` (the GPU count reaches the training CLI as `launch --gpus`).
HPARAM_KEYS: tuple[str, ...] = tuple(
    "seed" if spec.name == "seeds" else spec.name for spec in dataclasses.fields(TrainingSettings)
)
# Keys that change how a job checkpoints or logs, not what it computes: a changed value
# still resumes the run's checkpoints.
NON_MODEL_KEYS: tuple[str, ...] = ("logging_steps", "save_steps")


def check_hparams(hparams: Mapping[str, Any]) -> tuple[TrainingSettings, int]:
    """(settings, seed) of one run's hparams; raises unless they are exactly HPARAM_KEYS with
    values of the types and choices TrainingSettings declares, and in range."""
    missing = sorted(set(HPARAM_KEYS) - set(hparams))
    unknown = sorted(set(hparams) - set(HPARAM_KEYS))
    if missing or unknown:
        raise ValueError(
            f"training hparams: missing keys {missing}, unknown keys {unknown}; "
            f"expected exactly {list(HPARAM_KEYS)}"
        )
    training, seed = TrainingSettings.from_run_hparams(hparams)
    if not 0 <= training.warmup_ratio < 1:
        raise ValueError(f"training.warmup_ratio {training.warmup_ratio} must be in [0, 1)")
    if training.max_length <= 0:
        raise ValueError(f"training.max_length {training.max_length} must be > 0")
    return training, seed


def deepspeed_config(training: TrainingSettings) -> dict[str, Any] | None:
    """DeepSpeed JSON for `distributed: zero2|zero3` (None: plain DDP); 'auto' = Trainer's value."""
    stage = {"ddp": None, "zero2": 2, "zero3": 3}[training.distributed]
    if stage is None:
        return None
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if stage == 3:
        # without it, saving under ZeRO-3 writes an empty adapter (weights stay sharded)
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        zero["stage3_prefetch_bucket_size"] = "auto"
        zero["stage3_param_persistence_threshold"] = "auto"
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def write_train_config(hparams: Mapping[str, Any], mixture: str, path: Path) -> None:
    """Write the rendered training config (hparams, DeepSpeed JSON, mixture, version) as JSON."""
    training, _seed = check_hparams(hparams)
    payload = {
        "mixture": mixture,
        "package_version": medinjection.__version__,
        "hparams": {key: hparams[key] for key in HPARAM_KEYS},
        "deepspeed": deepspeed_config(training),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_train_config(path: Path) -> dict[str, Any]:
    """Read a config written by `write_train_config` and validate its hparams."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if "hparams" not in payload:
        raise ValueError(f"{path}: not a training config (no 'hparams' key)")
    check_hparams(payload["hparams"])
    return payload


def lora_config(training: TrainingSettings) -> Any:
    """PEFT LoraConfig (DoRA when method is 'dora') from the training settings."""
    from peft import LoraConfig

    return LoraConfig(
        r=training.r,
        lora_alpha=int(training.alpha),  # a number in the schema, an integer for PEFT
        lora_dropout=float(training.dropout),
        target_modules=list(training.target_modules),
        use_dora=training.method == "dora",
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_config(
    training: TrainingSettings,
    seed: int,
    checkpoints_dir: Path,
    use_bf16: bool,
    evaluate: bool = True,
    deepspeed: Mapping[str, Any] | None = None,
) -> Any:
    """TRL SFTConfig of one run; checkpoints go to `checkpoints_dir` so retries resume."""
    from trl import SFTConfig

    gradient_checkpointing = training.gradient_checkpointing
    return SFTConfig(
        output_dir=str(checkpoints_dir),
        max_length=training.max_length,  # explicit: TRL's default 1024 truncates silently
        packing=training.packing,  # bfd packing, which TRL makes padding-free
        # answer: prompt-completion rows, loss on the completion only; conversation: `messages`
        # rows, loss on every token (the authors' SFT-Training.py sets no completion collator)
        completion_only_loss=training.loss_on == "answer",
        assistant_only_loss=False,
        # the authors' group_by_length=True (transformers 5 renamed it); moot once rows are packed
        train_sampling_strategy="group_by_length"
        if training.group_by_length and not training.packing
        else "random",
        pad_to_multiple_of=training.pad_to_multiple_of or None,
        learning_rate=float(training.learning_rate),
        lr_scheduler_type=training.lr_scheduler,
        warmup_steps=float(training.warmup_ratio),  # transformers 5: a float < 1 is a ratio
        per_device_train_batch_size=training.per_device_batch_size,
        per_device_eval_batch_size=training.per_device_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        num_train_epochs=float(training.epochs),
        max_steps=training.max_steps if training.max_steps > 0 else -1,
        seed=seed,
        bf16=use_bf16,
        gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing else None,
        ddp_find_unused_parameters=False,  # every adapter weight gets a gradient each step
        deepspeed=dict(deepspeed) if deepspeed else None,
        optim="adamw_torch",
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="steps",
        save_steps=training.save_steps,
        save_total_limit=2,
        logging_steps=training.logging_steps,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not _cuda_available(),
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
