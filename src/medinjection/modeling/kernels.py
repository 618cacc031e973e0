"""Loading the base model for training: attention implementation and optional Liger kernels.

Speed options never fall back silently: `attn_implementation: flash_attention_2` without the
flash-attn package, or `liger_kernel: true` without liger-kernel, Triton or a CUDA GPU, stop the
job with a message naming the config key.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Liger kernels that compose with PEFT adapters and TRL's fused LM head (which already avoids
# materialising the logits, so Liger's fused linear cross-entropy is left off).
LIGER_KWARGS: dict[str, bool] = {
    "rope": True,
    "rms_norm": True,
    "swiglu": True,
    "cross_entropy": False,
    "fused_linear_cross_entropy": False,
}


def check_attn_implementation(name: str) -> None:
    """Raise when the configured attention implementation cannot run here."""
    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise RuntimeError(
            "training.attn_implementation is flash_attention_2 but the flash-attn package is not "
            "installed (GPU nodes have no network: install its wheel into the GPU env), or set "
            "training.attn_implementation: sdpa (the same attention, computed by PyTorch)"
        )


def apply_liger(model: Any) -> None:
    """Patch `model` in place with Liger's Triton kernels (RoPE, RMSNorm, SwiGLU)."""
    import torch

    missing = [name for name in ("liger_kernel", "triton") if not importlib.util.find_spec(name)]
    if missing:
        raise RuntimeError(
            f"training.liger_kernel is true but {missing} not installed: `pip install "
            "liger-kernel` (needs triton and a CUDA GPU), or set training.liger_kernel: false"
        )
    if not torch.cuda.is_available():
        raise RuntimeError(
            "training.liger_kernel is true but no CUDA device is visible (Liger kernels are "
            "Triton GPU kernels); set training.liger_kernel: false for a CPU run"
        )
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    model_type = model.config.model_type
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise RuntimeError(
            f"training.liger_kernel is true but liger-kernel has no kernels for model type "
            f"{model_type!r} (supported: {sorted(MODEL_TYPE_TO_APPLY_LIGER_FN)})"
        )
    MODEL_TYPE_TO_APPLY_LIGER_FN[model_type](model=model, **LIGER_KWARGS)
    log.info("Liger kernels applied to %s: %s", model_type, LIGER_KWARGS)


def load_model(model_dir: Path, hparams: Mapping[str, Any], use_bf16: bool) -> Any:
    """The base causal LM from a local folder, with the configured attention and kernels."""
    import torch
    from transformers import AutoModelForCausalLM

    check_attn_implementation(hparams["attn_implementation"])
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.bfloat16 if use_bf16 else torch.float32,
        attn_implementation=hparams["attn_implementation"],
    )
    if hparams["liger_kernel"]:
        apply_liger(model)
    return model
