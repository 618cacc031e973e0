"""The prediction backends by name (`prediction.backend`): each loader returns a predictor with
`prompt_ids(items) -> list[list[int]]` (the chat-templated prompts' token ids) and
`predict(items, prompt_ids=None) -> list[Prediction]` (`medinjection.modeling.types`), which
decodes from the given ids when the caller has them: the predict stage tokenizes each prompt
once, for its context check and for decoding. A new backend is a module beside
`transformers_backend.py` and one entry here. The engines are imported by the loader, so choosing
one never imports the other.
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
