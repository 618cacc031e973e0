"""Model FLOPs of LoRA/DoRA SFT per trained token, and MFU (docs: stack.md section 5).

With a frozen base the forward costs 2N FLOPs per token and the backward 2N (activation
gradients only, no weight gradients), N = matmul parameters including the LM head; the adapter
adds 6 N_lora; causal attention adds 2 L H d_h T forward and twice that backward (6 L H d_h T),
T the document length, averaged over tokens (sum T^2 / sum T). Activation checkpointing re-runs
the forward (2N + 2 L H d_h T): counted in hardware FLOPs (HFU), not in model FLOPs (MFU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Dense bf16 peak of one H100 SXM; the H200 has the same compute (more memory, faster HBM).
H100_BF16_DENSE_FLOPS = 989e12


@dataclass(frozen=True)
class Geometry:
    """The matmul shapes of a decoder-only transformer (Qwen3/Llama style, gated MLP)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def from_config(cls, config: Any) -> Geometry:
        """Geometry of a transformers config (head_dim defaults to hidden / heads)."""
        heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            hidden=int(config.hidden_size),
            layers=int(config.num_hidden_layers),
            heads=heads,
            kv_heads=int(config.num_key_value_heads),
            head_dim=int(head_dim),
            intermediate=int(config.intermediate_size),
            vocab=int(config.vocab_size),
        )

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one layer, by module name."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, q),
            "k_proj": (self.hidden, kv),
            "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }


def matmul_params(geometry: Geometry) -> int:
    """N: weights that take part in a matmul per token (layers' projections + LM head)."""
    per_layer = sum(i * o for i, o in geometry.linear_shapes().values())
    return geometry.layers * per_layer + geometry.hidden * geometry.vocab


def adapter_params(geometry: Geometry, r: int, targets: Sequence[str], dora: bool) -> int:
    """Trainable adapter weights: r (in + out) per target (+ out magnitudes for DoRA)."""
    shapes = geometry.linear_shapes()
    unknown = sorted(set(targets) - set(shapes))
    if unknown:
        raise ValueError(f"target modules {unknown} not in {sorted(shapes)}")
    per_layer = sum(
        r * (shapes[t][0] + shapes[t][1]) + (shapes[t][1] if dora else 0) for t in targets
    )
    return geometry.layers * per_layer


def attention_length(lengths: Sequence[int]) -> float:
    """Token-weighted mean document length, sum T^2 / sum T (the T of the attention term)."""
    total = sum(lengths)
    return sum(t * t for t in lengths) / total if total else 0.0


def flops_per_token(
    geometry: Geometry, n_adapter: int, attn_length: float, recompute: bool = False
) -> float:
    """Model FLOPs per trained token (recompute=True adds the checkpointed forward: HFU)."""
    attention = 2 * geometry.layers * geometry.heads * geometry.head_dim * attn_length
    n = matmul_params(geometry)
    model = 4 * n + 6 * n_adapter + 3 * attention
    return model + (2 * n + attention if recompute else 0.0)


def utilisation(tokens_per_s_per_gpu: float, flops: float, peak: float) -> float:
    """Share of the peak reached: tokens/s per GPU x FLOPs per token / peak FLOP/s."""
    return tokens_per_s_per_gpu * flops / peak


def flops_summary(
    geometry: Geometry, hparams: Mapping[str, Any], lengths: Sequence[int]
) -> dict[str, float]:
    """FLOPs per token (model and hardware) of a run with these hparams and document lengths."""
    n_adapter = adapter_params(
        geometry, int(hparams["r"]), list(hparams["target_modules"]), hparams["method"] == "dora"
    )
    t_attn = attention_length([min(t, int(hparams["max_length"])) for t in lengths])
    return {
        "matmul_params": matmul_params(geometry),
        "adapter_params": n_adapter,
        "attention_length": round(t_attn, 2),
        "model_flops_per_token": flops_per_token(geometry, n_adapter, t_attn),
        "hardware_flops_per_token": flops_per_token(
            geometry, n_adapter, t_attn, recompute=bool(hparams["gradient_checkpointing"])
        ),
    }
