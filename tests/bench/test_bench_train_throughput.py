"""bench/train_throughput.py runs (tiny, CPU) and its FLOP accounting matches stack.md section 5."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from transformers import Qwen3Config

from medinjection.modeling.flops import Geometry, adapter_params, flops_per_token, matmul_params
from tests.conftest import load_script


def _bench() -> types.ModuleType:
    return load_script("train_throughput", "bench")


def test_qwen3_4b_flops_match_the_reference_figures() -> None:
    bench = _bench()
    config = Qwen3Config(**bench.QWEN3_4B_2507)
    geometry = Geometry.from_config(config)
    assert geometry == Geometry(2560, 36, 32, 8, 128, 9728, 151936)
    # the 2507 release's rope theta (transformers 5 keeps it in rope_parameters), tied LM head
    assert config.rope_parameters["rope_theta"] == 5e6 and config.tie_word_embeddings is True
    # stack.md: N = 4.02 B (tied embeddings counted once, as the LM head), r=16 LoRA 33.0 M
    assert matmul_params(geometry) == 4_022_272_000
    lora = adapter_params(geometry, 16, bench.TARGETS, dora=False)
    assert lora == 33_030_144
    assert adapter_params(geometry, 16, bench.TARGETS, dora=True) == lora + 36 * 30720
    # stack.md's table: 16.7 / 17.2 / 18.1 GFLOP per token at T = 512 / 1024 / 2048 (model),
    # 25.0 / 25.6 / 26.8 with the checkpointing recompute
    for t, model, hardware in ((512, 16.7, 25.0), (1024, 17.2, 25.6), (2048, 18.1, 26.8)):
        assert flops_per_token(geometry, lora, t) / 1e9 == pytest.approx(model, abs=0.05)
        # (recompute = forward again, 2N + forward attention; stack.md's column is 0.06 higher)
        assert flops_per_token(geometry, lora, t, recompute=True) / 1e9 == pytest.approx(
            hardware, abs=0.1
        )


def test_packed_variants_keep_the_papers_tokens_per_micro_batch() -> None:
    bench = _bench()
    packed = bench.variant_hparams("paper-packed", bench.PAPER, mean_length=400.0)
    assert packed["packing"] is True and packed["per_device_batch_size"] == round(12 * 400 / 2048)
    fast = bench.variant_hparams("dora-fast", bench.PAPER, mean_length=400.0)
    assert (fast["method"], fast["dropout"], fast["gradient_checkpointing"]) == ("dora", 0.0, False)
    assert bench.variant_hparams("paper", bench.PAPER, 400.0) == bench.PAPER


def test_tiny_benchmark_runs_and_reports_consistent_figures(tmp_path: Path, capsys) -> None:
    bench = _bench()
    out = tmp_path / "bench.json"
    argv = ["--tiny", "--steps", "2", "--warmup", "1", "--variants", "paper,lora-fast"]
    bench.main([*argv, "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["device"] == "CPU (tiny)" and payload["peak_tflops"] == 989.0
    paper, lora = payload["results"]
    assert (paper["variant"], lora["variant"]) == ("paper", "lora-fast")
    assert paper["settings"]["method"] == "dora" and paper["settings"]["packing"] is False
    assert lora["settings"]["method"] == "lora" and lora["settings"]["packing"] is True
    for result in (paper, lora):
        assert result["timed_steps"] == 2 and result["tokens_per_s_per_gpu"] > 0
        assert result["matmul_params"] == 2 * 36864 + 64 * 512  # the tiny geometry by hand
        expected = result["tokens_per_s_per_gpu"] * result["model_flops_per_token"] / 989e12
        assert result["mfu"] == pytest.approx(expected, abs=1e-4)
    # the paper's settings checkpoint activations: hardware FLOPs exceed model FLOPs
    assert paper["hardware_flops_per_token"] > paper["model_flops_per_token"]
    assert lora["hardware_flops_per_token"] == lora["model_flops_per_token"]
    table = capsys.readouterr().out
    assert "paper" in table and "lora-fast" in table and "tok/s/GPU" in table
