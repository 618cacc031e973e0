"""Training hyper-parameters: the rendered config file and the TRL/PEFT objects built from it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import medinjection

Method = Literal["lora", "dora"]
Loss = Literal["full", "completion"]
METHODS: tuple[str, ...] = ("lora", "dora")
LOSSES: tuple[str, ...] = ("full", "completion")

# Exactly the keys of the config's `training:` block.
HPARAM_KEYS: tuple[str, ...] = (
    "method",
    "r",
    "alpha",
    "dropout",
    "target_modules",
    "learning_rate",
    "lr_scheduler",
    "warmup_ratio",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "gpus",
    "max_length",
    "epochs",
    "max_steps",
    "seed",
    "bf16",
    "gradient_checkpointing",
    "loss",
    "runtime_min",
    "mem_mb",
)


def check_hparams(hparams: Mapping[str, Any]) -> None:
    """Raise unless `hparams` has exactly HPARAM_KEYS with valid closed-choice values."""
    missing = sorted(set(HPARAM_KEYS) - set(hparams))
    unknown = sorted(set(hparams) - set(HPARAM_KEYS))
    if missing or unknown:
        raise ValueError(
            f"training hparams: missing keys {missing}, unknown keys {unknown}; "
            f"expected exactly {list(HPARAM_KEYS)}"
        )
    if hparams["method"] not in METHODS:
        raise ValueError(f"training.method {hparams['method']!r} not in {METHODS}")
    if hparams["loss"] not in LOSSES:
        raise ValueError(f"training.loss {hparams['loss']!r} not in {LOSSES}")
    if not 0 <= float(hparams["warmup_ratio"]) < 1:
        raise ValueError(f"training.warmup_ratio {hparams['warmup_ratio']} must be in [0, 1)")
    if int(hparams["max_length"]) <= 0:
        raise ValueError(f"training.max_length {hparams['max_length']} must be > 0")


def write_train_config(hparams: dict, mixture: str, path: Path) -> None:
    """Write the rendered training config (hparams + mixture + package version) as JSON."""
    check_hparams(hparams)
    payload = {
        "mixture": mixture,
        "package_version": medinjection.__version__,
        "hparams": {key: hparams[key] for key in HPARAM_KEYS},
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


def lora_config(hparams: Mapping[str, Any]) -> Any:
    """PEFT LoraConfig (DoRA when method is 'dora') from the hparams."""
    from peft import LoraConfig

    return LoraConfig(
        r=int(hparams["r"]),
        lora_alpha=int(hparams["alpha"]),
        lora_dropout=float(hparams["dropout"]),
        target_modules=list(hparams["target_modules"]),
        use_dora=hparams["method"] == "dora",
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_config(
    hparams: Mapping[str, Any],
    checkpoints_dir: Path,
    save_steps: int,
    logging_steps: int,
    use_bf16: bool,
    evaluate: bool = True,
) -> Any:
    """TRL SFTConfig from the hparams; checkpoints go to `checkpoints_dir` so retries resume."""
    from trl import SFTConfig

    gradient_checkpointing = bool(hparams["gradient_checkpointing"])
    return SFTConfig(
        output_dir=str(checkpoints_dir),
        max_length=int(hparams["max_length"]),  # explicit: TRL's default 1024 truncates silently
        packing=False,
        learning_rate=float(hparams["learning_rate"]),
        lr_scheduler_type=hparams["lr_scheduler"],
        warmup_steps=float(hparams["warmup_ratio"]),  # transformers 5: a float < 1 is a ratio
        per_device_train_batch_size=int(hparams["per_device_batch_size"]),
        per_device_eval_batch_size=int(hparams["per_device_batch_size"]),
        gradient_accumulation_steps=int(hparams["gradient_accumulation_steps"]),
        num_train_epochs=float(hparams["epochs"]),
        max_steps=int(hparams["max_steps"]) if int(hparams["max_steps"]) > 0 else -1,
        seed=int(hparams["seed"]),
        bf16=use_bf16,
        gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing else None,
        optim="adamw_torch",
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        logging_steps=logging_steps,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not _cuda_available(),
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
