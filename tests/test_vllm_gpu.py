"""The vLLM backend for real, on a GPU node: run it in the cluster's GPU environment.

    conda env create -f envs/gpu.yaml && conda activate medinjection-gpu
    srun --gpus 1 pytest -q tests/test_vllm_gpu.py

Skipped where vllm or a CUDA GPU is missing (the CI and build machines have neither). Checks
what the fake `vllm` module of test_predict.py cannot: that vLLM 0.33 accepts the engine
arguments and requests the backend builds (logprobs mode, max_model_len, structured outputs
`choice`/`regex`, allowed_token_ids with logprobs, token-id prompts), that constrained answers
obey the protocol, and that vLLM and the transformers engine agree on the same tiny model.
"""

from __future__ import annotations

import importlib.util
import json

import pyarrow.parquet as pq
import pytest
import torch

from medinjection.evaluation.parsing import parse_letters
from medinjection.modeling.base import prepare_base_model
from medinjection.modeling.predict import predict
from medinjection.records import write_records
from tests.test_predict import COLUMNS, TINY, _testsets

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
    reason="needs vllm and a CUDA GPU (envs/gpu.yaml on a GPU node)",
)
NAMES = ("mcqu", "mcq", "oeq")
# The two backends run different kernels (and vLLM batches differently), so near-ties may
# break differently: agreement is required on most items, not all.
MIN_AGREEMENT = 0.8


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    root = tmp_path_factory.mktemp("vllm_gpu")
    files = []
    for name, records in _testsets().items():
        files.append(root / "testsets" / f"{name}.parquet")
        write_records(records, files[-1])
    prepare_base_model("tiny", root / "base", TINY, files, None, None)
    out: dict[str, dict[str, list[dict]]] = {}
    for backend in ("vllm", "transformers"):
        outs = [root / backend / f"{name}.parquet" for name in NAMES]
        predict(
            backend, root / "base", None, files, outs, 4, 8, "v1", max_model_len=1024,
            protocol="letters",  # the official protocol's agreement: tests/test_protocol.py
        )  # fmt: skip
        out[backend] = {n: pq.read_table(p).to_pylist() for n, p in zip(NAMES, outs, strict=True)}
    return out


def test_vllm_writes_the_schema_and_obeys_the_constraints(runs) -> None:
    for name in NAMES:
        assert runs["vllm"][name] and all(list(row) == COLUMNS for row in runs["vllm"][name])
    for row in runs["vllm"]["mcqu"]:
        assert row["constrained_output"] in row["letters"].split(",")
        probs = json.loads(row["letter_probs"])
        assert sorted(probs) == row["letters"].split(",")
        assert sum(probs.values()) == pytest.approx(1)
    for row in runs["vllm"]["mcq"]:
        # the regex asks for at least one letter (the transformers constraint, like the
        # official one, may also stop at once: an empty, invalid answer)
        parsed = parse_letters(row["constrained_output"], row["letters"].split(","), single=False)
        assert parsed is not None and parsed == tuple(sorted(parsed)), row["constrained_output"]
    assert all(row["constrained_output"] is None for row in runs["vllm"]["oeq"])


def _agreement(a: tuple, b: tuple) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def test_vllm_agrees_with_the_transformers_engine(runs) -> None:
    for name in ("mcqu", "mcq"):
        vllm_rows, hf_rows = runs["vllm"][name], runs["transformers"][name]
        assert [r["id"] for r in vllm_rows] == [r["id"] for r in hf_rows]
        # MCQ: only where the transformers engine answered (it may stop before any letter)
        pairs = [
            (v["constrained_parsed"], h["constrained_parsed"])
            for v, h in zip(vllm_rows, hf_rows, strict=True)
            if h["constrained_parsed"] is not None
        ]
        if name == "mcqu":
            assert len(pairs) == len(hf_rows)
        if pairs:
            assert _agreement(*zip(*pairs, strict=True)) >= MIN_AGREEMENT, (name, pairs)
        for v, h in zip(vllm_rows, hf_rows, strict=True):
            pv, ph = json.loads(v["letter_probs"]), json.loads(h["letter_probs"])
            assert pv == pytest.approx(ph, abs=0.05)
    oeq = [(v["greedy_output"], h["greedy_output"]) for v, h in
           zip(runs["vllm"]["oeq"], runs["transformers"]["oeq"], strict=True)]  # fmt: skip
    assert _agreement(*zip(*oeq, strict=True)) >= MIN_AGREEMENT, oeq
