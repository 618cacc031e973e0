"""The prediction backends by name (`prediction.backend`): each loader returns a predictor with
`prompt_lengths(items) -> list[int]` and `predict(items) -> list[Prediction]`
(`medinjection.modeling.types`). A new backend is a module beside `transformers_backend.py` and
one entry here. The engines are imported by the loader, so choosing one never imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _transformers_backend(
    model_dir: Path,
    adapter_dir: Path | None,
    batch_size: int,
    max_model_len: int | None,
    protocol: str,
) -> Any:
    from medinjection.modeling.transformers_backend import TransformersPredictor

    return TransformersPredictor(model_dir, adapter_dir, batch_size, protocol)


def _vllm_backend(
    model_dir: Path,
    adapter_dir: Path | None,
    batch_size: int,
    max_model_len: int | None,
    protocol: str,
) -> Any:
    from medinjection.modeling.vllm_backend import VllmPredictor

    return VllmPredictor(model_dir, adapter_dir, max_model_len, protocol)


BACKENDS: dict[str, Callable[[Path, Path | None, int, int | None, str], Any]] = {
    "transformers": _transformers_backend,
    "vllm": _vllm_backend,
}
