"""Merge a LoRA/DoRA adapter into its base model (vLLM refuses DoRA adapters)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Load base + adapter, `merge_and_unload`, save the merged model with the tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{adapter_dir} has no adapter_config.json; train the adapter first"
        )
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    log.info("merged %s into %s -> %s", adapter_dir, base_dir, out_dir)
