"""The tiny Qwen3 architecture the model tests build (seed varies per test file's goldens)."""

from __future__ import annotations


def tiny_spec(seed: int) -> dict[str, int]:
    """`base_model.tiny` values for a 2-layer, 32-wide test model."""
    return {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "intermediate_size": 64,
        "vocab_size": 512,
        "max_position_embeddings": 512,
        "seed": seed,
    }


def vllm_tiny_spec(seed: int) -> dict[str, int]:
    """A tiny Qwen3 the CPU build of vLLM runs: its attention kernels need head_dim >= 32."""
    return {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "intermediate_size": 128,
        "vocab_size": 512,
        "max_position_embeddings": 1024,  # the judge prompt alone is ~510 tokens
        "seed": seed,
    }
